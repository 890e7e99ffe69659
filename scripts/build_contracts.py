#!/usr/bin/env python3
"""Rebuild the dev-chain contract artifacts (ABI + bytecode JSON) from payments_gateway/chain/contracts/src.

Usage: ``make contracts`` (or ``python scripts/build_contracts.py [--check]``). Needs Node.js and solcjs (the npm
package ``solc``, a dev dependency in package.json, installed by ``npm install``); the app itself only reads the
committed JSON artifacts. ``--check`` fails if the committed artifacts differ from a fresh build.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ROOT / "payments_gateway" / "chain" / "contracts"
SOURCES = CONTRACTS / "src"
ARTIFACTS = CONTRACTS / "artifacts"
EVM_VERSION = "cancun"

# solcjs takes Standard JSON on stdin and prints Standard JSON on stdout.
_NODE_DRIVER = """
const solc = require(process.argv[1]);
let input = '';
process.stdin.on('data', (c) => (input += c));
process.stdin.on('end', () => {
  process.stdout.write(JSON.stringify({version: solc.version(), output: JSON.parse(solc.compile(input))}));
});
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed artifacts are out of date")
    args = parser.parse_args()
    artifacts = build()
    stale = []
    for name, artifact in artifacts.items():
        path = ARTIFACTS / f"{name}.json"
        text = json.dumps(artifact, indent=2, sort_keys=True) + "\n"
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path.name)
        else:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run `make contracts` and commit the result", file=sys.stderr)
        return 1
    return 0


def build() -> dict[str, dict]:
    """Compile every source in src/ and return {contract name: artifact}."""
    solc_dir = Path(os.environ.get("SOLCJS_DIR", ROOT / "node_modules" / "solc"))
    if not (solc_dir / "soljson.js").is_file():
        sys.exit(f"solcjs not found at {solc_dir}: run `npm install` (package.json has it as a dev dependency)")
    sources = {path.name: {"content": path.read_text()} for path in sorted(SOURCES.glob("*.sol"))}
    standard_input = {
        "language": "Solidity",
        "sources": sources,
        "settings": {
            "evmVersion": EVM_VERSION,
            "optimizer": {"enabled": True, "runs": 200},
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
        },
    }
    proc = subprocess.run(
        ["node", "-e", _NODE_DRIVER, str(solc_dir)],
        input=json.dumps(standard_input),
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(proc.stdout)
    errors = [e for e in result["output"].get("errors", []) if e["severity"] == "error"]
    if errors:
        sys.exit("\n".join(e["formattedMessage"] for e in errors))
    for warning in result["output"].get("errors", []):
        print(warning["formattedMessage"], file=sys.stderr)
    artifacts = {}
    for source_name, contracts in result["output"]["contracts"].items():
        source_hash = hashlib.sha256(sources[source_name]["content"].encode()).hexdigest()
        for name, out in contracts.items():
            artifacts[name] = {
                "contractName": name,
                "sourceName": f"src/{source_name}",
                "sourceSha256": source_hash,
                "compiler": f"solc {result['version']}",
                "evmVersion": EVM_VERSION,
                "abi": out["abi"],
                "bytecode": "0x" + out["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + out["evm"]["deployedBytecode"]["object"],
            }
    return artifacts


if __name__ == "__main__":
    sys.exit(main())
