"""A browser wallet for the Chromium tests: an EIP-1193 provider injected into the page (announced through EIP-6963),
whose every request is answered in Python by :class:`TestWallet`, which signs with an unlocked anvil account (it
forwards ``eth_sendTransaction`` to the dev chain, so the payment really happens on chain).

The wallet can be told to behave like a customer's: to start on another chain, not know the dev chain, refuse a
request (EIP-1193 code 4001), disconnect in the middle (4900), or hold a poor account.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from payments_gateway.chain.devchain import DevChainError

#: The injected provider: every request goes to window.__testWalletRequest (exposed by Playwright).
PROVIDER_JS = """
(() => {
  const listeners = {};
  const provider = {
    async request({ method, params }) {
      const answer = JSON.parse(await window.__testWalletRequest(method, JSON.stringify(params || [])));
      if (answer.event) (listeners[answer.event] || []).forEach((listener) => listener(answer.event_data));
      if (answer.error) {
        const error = new Error(answer.error.message);
        error.code = answer.error.code;
        throw error;
      }
      return answer.result;
    },
    on(event, listener) { (listeners[event] = listeners[event] || []).push(listener); },
    removeListener(event, listener) {
      listeners[event] = (listeners[event] || []).filter((l) => l !== listener);
    },
  };
  const icon = "data:image/svg+xml," + encodeURIComponent('<svg xmlns="http://www.w3.org/2000/svg" ' +
    'viewBox="0 0 24 24"><circle cx="12" cy="12" r="10" fill="#f6851b"/></svg>');
  const wallets = NAMES.map((name, i) => ({ uuid: "7d1c0b8e-0000-4000-8000-00000000000" + i, name, icon,
                                            rdns: "org.example.wallet" + i }));
  const announce = () => wallets.forEach((info) => window.dispatchEvent(
    new CustomEvent("eip6963:announceProvider", { detail: Object.freeze({ info, provider }) })));
  window.addEventListener("eip6963:requestProvider", announce);
  announce();
})();
"""


@dataclass
class TestWallet:
    """What the injected wallet does. ``chain``: the dev chain; ``account``: who pays (an anvil account)."""

    __test__ = False  # not a test class

    chain: Any
    account: str
    chain_id: int = 1  # the wallet starts on Ethereum, not on the dev chain
    known_chains: set[int] = field(default_factory=lambda: {1})
    refuse: set[str] = field(default_factory=set)  # methods the customer rejects (4001)
    disconnect_on: set[str] = field(default_factory=set)  # methods during which the wallet goes away
    ignore_switch: bool = False  # answers a switch but stays where it is
    balances: dict[str, str] = field(default_factory=dict)  # method -> result to return instead of the chain's
    requests: list[tuple[str, list]] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)

    def install(self, page, names: tuple[str, ...] = ("Test Wallet",)) -> None:
        """Inject the provider into ``page`` (before any of its scripts run) and answer its requests."""
        page.expose_function("__testWalletRequest", self.answer)
        page.add_init_script(PROVIDER_JS.replace("NAMES", json.dumps(list(names))))

    def answer(self, method: str, params_json: str) -> str:
        params = json.loads(params_json)
        self.requests.append((method, params))
        try:
            return json.dumps(self._handle(method, params))
        except DevChainError as exc:  # the node refused (e.g. not enough funds): the wallet reports it
            return json.dumps({"error": {"code": -32000, "message": str(exc)}})

    def _handle(self, method: str, params: list) -> dict[str, Any]:
        if method in self.disconnect_on:
            return {"event": "disconnect", "event_data": {"code": 4900},
                    "error": {"code": 4900, "message": "Disconnected"}}  # fmt: skip
        if method in self.refuse:
            return {"error": {"code": 4001, "message": "User rejected the request."}}
        if method in ("eth_requestAccounts", "eth_accounts"):
            return {"result": [self.account]}
        if method == "eth_chainId":
            return {"result": hex(self.chain_id)}
        if method == "wallet_switchEthereumChain":
            wanted = int(params[0]["chainId"], 16)
            if wanted not in self.known_chains:
                return {"error": {"code": 4902, "message": f"Unrecognized chain ID {params[0]['chainId']}."}}
            if not self.ignore_switch:
                self.chain_id = wanted
            return {"result": None}
        if method == "wallet_addEthereumChain":
            added = int(params[0]["chainId"], 16)
            self.known_chains.add(added)
            self.chain_id = added  # wallets switch to a chain they just added
            return {"result": None}
        if method in self.balances:
            return {"result": self.balances[method]}
        if method == "eth_sendTransaction":
            tx_hash = self.chain.rpc("eth_sendTransaction", params)
            self.sent.append(tx_hash)
            return {"result": tx_hash}
        return {"result": self.chain.rpc(method, params)}  # reads: eth_getBalance, eth_call, ...

    def asked(self, method: str) -> list[list]:
        """The params of each request of ``method`` the page made."""
        return [params for name, params in self.requests if name == method]
