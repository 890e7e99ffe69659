// SPDX-License-Identifier: MIT
// Deposit addresses that can only ever pay one treasury, collected in batches by anyone, with no key behind them.
pragma solidity 0.8.28;

/// @title ForwarderFactory: CREATE2 deposit addresses swept to a treasury
///
/// A deposit address is `CREATE2(factory, salt, initCode(treasury))`. Nothing is deployed when it is handed out:
/// it is a plain empty account, so exchanges' 21,000-gas ETH sends and any ERC-20 transfer to it just work.
/// `sweep(treasury, asset, salts)` then, for each salt, CREATE2s the deposit address's init code, which
///   1. asks this factory (its deployer) which asset is being swept (a call with empty calldata, answered from
///      transient storage),
///   2. if it is a token, reads its own balance and `transfer`s all of it to the treasury (tokens that return no
///      bool, like USDT, are accepted; `false` or a revert reverts the init code),
///   3. SELFDESTRUCTs to the treasury, which sends the address's whole ETH balance there (without running the
///      treasury's code) and, because the contract was created in this same transaction, deletes the account.
/// The init code returns no runtime code, so the address never holds code for longer than one transaction.
///
/// Why this design, and not the deployed forwarders of BitGo's ForwarderV4 or bitbank's ExchangeDeposit:
/// - A deployed forwarder runs code whenever it receives ETH. A transaction with a 21,000 gas limit has no gas
///   left after the intrinsic cost, so every send to an address with (non-trivial) code fails. Exchanges send
///   ETH with exactly 21,000 gas, and a payment that arrives after the first sweep must still work, so the
///   address must hold no code after the sweep, not only before it.
/// - Since Cancun, SELFDESTRUCT (EIP-6780) deletes code, storage and nonce only when it runs in the transaction
///   that created the contract; otherwise it only moves the ETH. Here it always runs inside the creating CREATE2,
///   so the account is gone at the end of the sweep transaction. Nonce and code back to empty is what lets the
///   next sweep CREATE2 the same address again (a CREATE2 onto an account with a nonce or code fails): sweeps
///   repeat on the same address for ever, and a payment arriving after a sweep is collected by the next one.
///   (Before Cancun SELFDESTRUCT always deleted, so the design also holds on older chains.)
/// - The treasury is the PUSH20 immediate of the init code, so it is part of the init-code hash and therefore of
///   the address: a given deposit address can only ever be created with that treasury, and that code sends to
///   nothing else. Deploying "first, with another treasury" yields another address; nobody else can CREATE2 at
///   this factory's addresses; the factory has no owner, no admin, no upgrade, no pause and no storage but one
///   transient slot. Anyone may call `sweep`: the worst a stranger can do is pay the gas of moving the
///   merchant's money to the merchant.
/// - The init code is written by hand (table below) and does not depend on the compiler: deposit addresses are
///   computed offline (payments_gateway/chain/forwarder.py) and stay the same if this file is rebuilt. It is the
///   only code that ever runs at a deposit address; 107 bytes, no memory beyond 0x60, no storage.
/// - Gas (bench/sweep.py, a 6-decimal token; the xpub scheme's ETH top-up plus signed transfer is about 50,600
///   per deposit): about 45,700 per deposit in batches of 10 and 42,500 in batches of 50, the same for every
///   later sweep of the address; ETH about 38,300 against one 21,000 transfer. Per address that is one CREATE2
///   (32,000), one SELFDESTRUCT (5,000) and the token's own transfer; the balance read, the asset callback and the
///   loop add about 1,300. The 37,000 are the floor of any design with the properties above: moving a token from
///   an address nobody has a key to needs code at that address, hence a CREATE (32,000) per address and sweep,
///   and the address can only be created again, and stays free of code, if the same transaction self-destructs
///   it. A persistent forwarder pays more on its first sweep (200 gas per byte of runtime code) and breaks
///   21,000-gas sends afterwards. An init code without SELFDESTRUCT would be about 5,000 cheaper per address but
///   leaves the address dead after one sweep (nonce 1: no CREATE2 there again), so a later payment to it could
///   never be moved; we do not buy gas with money a customer may still send.
///
/// Caveats the caller must respect (the relayer does):
/// - Never sweep the same address twice in one transaction: until the transaction ends the swept account
///   still exists (nonce 1), so a second CREATE2 collides and burns all the gas it was given. `sweep` refuses
///   salts that are not strictly increasing, which rules it out within one call.
/// - ETH sent to a deposit address *during* a sweep transaction, after that address was swept, is destroyed with
///   the account (EIP-6780). Only code running in that transaction (the swept token, or the treasury through a
///   token hook) could do that; payments sent in their own transactions, before or after, are never affected.
/// - A token whose transfer reverts or returns false for one address (a blacklist, a pause) leaves that address
///   as it was (`SweepFailed`) and the batch goes on.
///
/// The deposit init code (`initCode(treasury)`; `T` is the treasury, memory 0x00-0x60 is scratch):
///   pc  bytes                          stack after     what
///   00  73 T                           T               PUSH20 T
///   15  6020 5f 5f 5f 33 5a fa         ok T            STATICCALL(gas, caller, 0, 0, 0, 0x20): the factory's
///                                                      fallback answers the asset being swept
///   1d  5f 51 02                       asset T         MLOAD(0) * ok: the asset, or 0 if the call failed
///   20  80 15 6068 57                  asset T         asset 0 (ETH only): jump to 0x68
///   25  6370a08231 5f 52 30 6020 52    asset T         mem[0x1c..0x40] = balanceOf(this)
///   30  6020 6040 6024 601c 84 5a fa   ok asset T      STATICCALL(gas, asset, 0x1c, 0x24, 0x40, 0x20)
///   3b  6040 51 02 15 6068 57          asset T         balance 0, or the call failed: jump to 0x68
///   43  63a9059cbb 5f 52 81 6020 52    asset T         mem[0x1c..0x60] = transfer(T, balance); the balance
///                                                      is at 0x40 already
///   4e  6020 5f 6044 601c 5f 85 5a f1  ok asset T      CALL(gas, asset, 0, 0x1c, 0x44, 0, 0x20)
///   59  3d 15 5f 51 6001 14 17 16      good asset T    ok && (no return data, as USDT || returned 1)
///   62  6068 57                        asset T         good: jump to 0x68
///   65  5f 5f fd                                       REVERT(0, 0): the token refused; undo this address
///   68  5b 50 ff                                       JUMPDEST POP SELFDESTRUCT(T): all ETH to T; the
///                                                      account is deleted at the end of the transaction
contract ForwarderFactory {
    /// Everything after `PUSH20 treasury`; see the table above. Never change it: it defines every address.
    bytes private constant INIT_CODE_TAIL =
        hex"60205f5f5f335afa5f510280156068576370a082315f5230602052602060406024601c845afa604051021560685763"
        hex"a9059cbb5f528160205260205f6044601c5f855af13d155f5160011417166068575f5ffd5b50ff";

    /// The asset of the sweep in progress (zero: ETH only), answered to the deposit init code by `fallback`.
    address private transient _sweepingAsset;

    /// One per `sweep` call: `addresses` deposit addresses were swept, the treasury's balance of `asset` (zero:
    /// ETH) grew by `amount` base units.
    event Swept(address indexed treasury, address indexed asset, uint256 addresses, uint256 amount);
    /// The deposit address of `salt` could not be swept (its token transfer failed); it keeps its funds.
    event SweepFailed(address indexed treasury, address indexed asset, uint256 salt);

    error InvalidTreasury(address treasury);
    error SaltsNotIncreasing(uint256 position);
    error NotAToken(address asset);

    /// Move everything at the deposit addresses of `salts` to `treasury`: all their `asset` (an ERC-20; zero for
    /// none) and all their ETH. Anyone may call it. `salts` must be strictly increasing; the treasury cannot be
    /// zero or this factory (either would lose the funds). Returns how many addresses were swept and how much of
    /// `asset` (ETH when zero) the treasury received.
    function sweep(address treasury, address asset, uint256[] calldata salts)
        external
        returns (uint256 swept, uint256 amount)
    {
        if (treasury == address(0) || treasury == address(this)) revert InvalidTreasury(treasury);
        address outer = _sweepingAsset; // a token that re-enters `sweep` must not change ours
        _sweepingAsset = asset;
        uint256 before = _balance(asset, treasury);
        swept = _createAll(treasury, asset, salts);
        _sweepingAsset = outer;
        uint256 afterwards = _balance(asset, treasury);
        amount = afterwards > before ? afterwards - before : 0;
        emit Swept(treasury, asset, swept, amount);
    }

    /// The deposit init code calls its deployer with empty calldata: the answer is the asset being swept (zero
    /// outside a sweep). Any other call that matches no function, or sends ETH, reverts.
    fallback() external {
        assembly {
            if calldatasize() { revert(0, 0) }
            mstore(0, tload(_sweepingAsset.slot))
            return(0, 0x20)
        }
    }

    /// The deposit address of (`treasury`, `salt`): where CREATE2 will put its init code.
    function depositAddress(address treasury, uint256 salt) public view returns (address) {
        bytes32 digest = keccak256(abi.encodePacked(bytes1(0xff), address(this), salt, keccak256(initCode(treasury))));
        return address(uint160(uint256(digest)));
    }

    /// Deposit addresses of many salts in one call (checks of the offline computation).
    function depositAddresses(address treasury, uint256[] calldata salts) external view returns (address[] memory out) {
        out = new address[](salts.length);
        for (uint256 i = 0; i < salts.length; ++i) {
            out[i] = depositAddress(treasury, salts[i]);
        }
    }

    /// The init code of every deposit address of `treasury`: `PUSH20 treasury` and the fixed tail.
    function initCode(address treasury) public pure returns (bytes memory) {
        return abi.encodePacked(bytes1(0x73), treasury, INIT_CODE_TAIL);
    }

    /// CREATE2 the init code of `treasury` at each salt; returns how many succeeded. Assembly because it runs
    /// once per deposit address: Solidity's bounds checks and event encoding would cost a few hundred gas each
    /// time, and gas per address is this contract's purpose.
    function _createAll(address treasury, address asset, uint256[] calldata salts) private returns (uint256 swept) {
        bytes memory code = initCode(treasury);
        bytes32 failedTopic = SweepFailed.selector;
        bytes4 unsorted = SaltsNotIncreasing.selector;
        assembly ("memory-safe") {
            let previous := 0
            for { let i := 0 } lt(i, salts.length) { i := add(i, 1) } {
                let salt := calldataload(add(salts.offset, shl(5, i)))
                if and(gt(i, 0), iszero(gt(salt, previous))) {
                    mstore(0, unsorted)
                    mstore(4, i)
                    revert(0, 0x24)
                }
                previous := salt
                switch create2(0, add(code, 0x20), mload(code), salt)
                case 0 {
                    mstore(0, salt)
                    log3(0, 0x20, failedTopic, treasury, asset)
                }
                default { swept := add(swept, 1) }
            }
        }
    }

    function _balance(address asset, address holder) private view returns (uint256) {
        if (asset == address(0)) return holder.balance;
        (bool ok, bytes memory data) = asset.staticcall(abi.encodeWithSelector(0x70a08231, holder)); // balanceOf
        if (!ok || data.length < 32) revert NotAToken(asset);
        return abi.decode(data, (uint256));
    }
}
