// SPDX-License-Identifier: MIT
// A 6-decimal ERC-20 whose `transfer` reads the same kinds of state as Tether's USDT on Ethereum, for gas
// measurements (bench/sweep.py): USDT is the reference stablecoin for what sweeping a deposit costs.
//
// Written here, not copied: the storage it touches per transfer follows USDT's (TetherToken, solc 0.4.17):
//   - `paused` (packed with `owner` in slot 0, as Ownable + Pausable lay them out): the whenNotPaused check;
//   - `isBlackListed[msg.sender]`: the sender's blacklist entry;
//   - `deprecated` (packed with `upgradedAddress`): whether calls are forwarded to an upgraded contract;
//   - `basisPointsRate` and `maximumFee`: the transfer fee (zero on mainnet, but read on every transfer);
//   - the sender's and the recipient's balances; one Transfer event.
// `balanceOf` reads `deprecated` first, as USDT's does. `transfer` returns nothing (USDT's returns no bool), and
// the payload-size check of USDT's onlyPayloadSize is kept (it reads no state). Anyone may mint, blacklist or set
// the fee: test money only.
pragma solidity 0.8.28;

contract TetherLikeToken {
    address public owner;
    bool public paused;
    mapping(address => uint256) private balances;
    mapping(address => mapping(address => uint256)) public allowance;
    uint256 public totalSupply;
    uint256 public basisPointsRate;
    uint256 public maximumFee;
    mapping(address => bool) public isBlackListed;
    string public name;
    string public symbol;
    uint256 public decimals;
    address public upgradedAddress;
    bool public deprecated;

    event Transfer(address indexed from, address indexed to, uint256 value);

    constructor(string memory name_, string memory symbol_, uint256 decimals_) {
        owner = msg.sender;
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
    }

    function balanceOf(address who) external view returns (uint256) {
        require(!deprecated, "deprecated");
        return balances[who];
    }

    function transfer(address to, uint256 value) external {
        require(msg.data.length >= 2 * 32 + 4, "short payload");
        require(!paused, "paused");
        require(!isBlackListed[msg.sender], "blacklisted");
        require(!deprecated, "deprecated");
        uint256 fee = (value * basisPointsRate) / 10000;
        if (fee > maximumFee) fee = maximumFee;
        uint256 sendAmount = value - fee;
        balances[msg.sender] -= value;
        balances[to] += sendAmount;
        if (fee > 0) {
            balances[owner] += fee;
            emit Transfer(msg.sender, owner, fee);
        }
        emit Transfer(msg.sender, to, sendAmount);
    }

    function mint(address to, uint256 amount) external {
        totalSupply += amount;
        balances[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function setBlackListed(address account, bool listed) external {
        isBlackListed[account] = listed;
    }

    function setParams(uint256 newBasisPoints, uint256 newMaxFee) external {
        basisPointsRate = newBasisPoints;
        maximumFee = newMaxFee;
    }
}
