// SPDX-License-Identifier: MIT
// Chainlink AggregatorV3Interface stand-in for the dev chain: a price feed whose answer tests can set.
pragma solidity 0.8.28;

contract MockV3Aggregator {
    uint8 public immutable decimals;
    string public description;
    uint256 public constant version = 4;

    uint80 public latestRound;
    mapping(uint80 => int256) public getAnswer;
    mapping(uint80 => uint256) public getTimestamp;

    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);

    constructor(uint8 decimals_, string memory description_, int256 initialAnswer) {
        decimals = decimals_;
        description = description_;
        _update(initialAnswer, block.timestamp);
    }

    function updateAnswer(int256 answer) external {
        _update(answer, block.timestamp);
    }

    /// Set an answer with an explicit update time (tests of stale feeds).
    function updateAnswerAt(int256 answer, uint256 updatedAt) external {
        _update(answer, updatedAt);
    }

    function latestAnswer() external view returns (int256) {
        return getAnswer[latestRound];
    }

    function latestTimestamp() external view returns (uint256) {
        return getTimestamp[latestRound];
    }

    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        return _round(latestRound);
    }

    function getRoundData(uint80 roundId_)
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        require(getTimestamp[roundId_] != 0, "No data present");
        return _round(roundId_);
    }

    function _round(uint80 roundId_) internal view returns (uint80, int256, uint256, uint256, uint80) {
        return (roundId_, getAnswer[roundId_], getTimestamp[roundId_], getTimestamp[roundId_], roundId_);
    }

    function _update(int256 answer, uint256 updatedAt) internal {
        latestRound++;
        getAnswer[latestRound] = answer;
        getTimestamp[latestRound] = updatedAt;
        emit AnswerUpdated(answer, latestRound, updatedAt);
    }
}
