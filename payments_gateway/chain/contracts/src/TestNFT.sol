// SPDX-License-Identifier: MIT
// An ERC-721 for the tests: its Transfer event has the ERC-20 topic but indexes the token id as a fourth topic,
// so the scanner must tell it apart from a payment. Anyone may mint: test tokens only.
pragma solidity 0.8.28;

contract TestNFT {
    mapping(uint256 => address) public ownerOf;

    event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);

    function mint(address to, uint256 tokenId) external {
        require(ownerOf[tokenId] == address(0), "minted");
        ownerOf[tokenId] = to;
        emit Transfer(address(0), to, tokenId);
    }

    function transferFrom(address from, address to, uint256 tokenId) external {
        require(ownerOf[tokenId] == from && from == msg.sender, "not yours");
        ownerOf[tokenId] = to;
        emit Transfer(from, to, tokenId);
    }
}
