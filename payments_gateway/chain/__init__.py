"""Chain layer: deposit addresses from the xpub, the dev chain, RPC access and the scanner."""
