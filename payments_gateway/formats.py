"""What EVM values look like as text: addresses and transaction hashes.

One definition, used by the settings, the scanner and the incoming-webhook handlers alike.
"""

from __future__ import annotations

import re

#: A 20-byte address, any case (EIP-55 checksums are checked where an address is stored).
ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
#: A 32-byte transaction hash.
TX_HASH_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")
