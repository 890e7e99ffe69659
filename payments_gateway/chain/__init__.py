"""The chain layer: reading EVM chains, and nothing above the models.

- :mod:`.rpc` — JSON-RPC client with failover between a network's URLs;
- :mod:`.hd` — addresses derived from an xpub (public derivation only);
- :mod:`.blocks` — blocks, transactions and logs read into the payments they make;
- :mod:`.logs` — ``eth_getLogs`` of token transfers to many addresses (range halving);
- :mod:`.multicall` — many ETH balances through Multicall3;
- :mod:`.devchain` and ``contracts/`` — anvil and the contracts of the dev chain.
"""
