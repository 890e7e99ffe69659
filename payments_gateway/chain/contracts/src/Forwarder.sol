// SPDX-License-Identifier: MIT
// Stands in for a smart-contract wallet (a Safe, say) paying ETH: the value reaches the recipient through an
// internal call, so the transaction's own `to` and `value` are not the payment and only a balance check sees it.
pragma solidity 0.8.28;

contract Forwarder {
    event Forwarded(address indexed to, uint256 value);

    /// Send all of msg.value to `to` through an internal call.
    function forward(address payable to) external payable {
        _send(to, msg.value);
    }

    /// Split msg.value over several recipients in one transaction; amounts must add up to msg.value.
    function forwardMany(address payable[] calldata to, uint256[] calldata amounts) external payable {
        require(to.length == amounts.length, "length mismatch");
        uint256 total = 0;
        for (uint256 i = 0; i < to.length; i++) {
            total += amounts[i];
            _send(to[i], amounts[i]);
        }
        require(total == msg.value, "amounts do not add up to msg.value");
    }

    function _send(address payable to, uint256 value) internal {
        (bool ok, ) = to.call{value: value}("");
        require(ok, "forward failed");
        emit Forwarded(to, value);
    }
}
