// "Pay with wallet": pays the checkout from the browser's own wallet (EIP-1193 providers, found through EIP-6963
// announcements, or window.ethereum when none announces itself). It connects, switches the wallet to the session's
// chain (adding it when the wallet does not know it and a public RPC URL is configured), sends exactly what the page's
// live status says is left to pay — plain ETH, or the ERC-20 transfer(address,uint256) call — and then lets the
// page's live status (checkout.js) show pending and paid. Every failure is explained in words in #wallet-status.
// The sentences come from the server, in the page's language (JSON in the box's data-messages).
(function () {
  "use strict";
  var box = document.getElementById("wallet");
  var root = document.getElementById("checkout");
  if (!box || !root || typeof BigInt === "undefined") return;
  var data = box.dataset;
  var text = JSON.parse(data.messages);
  var statusEl = document.getElementById("wallet-status");
  var buttons = document.getElementById("wallet-buttons");
  var chainId = parseInt(data.chainId, 10);
  var chainHex = "0x" + chainId.toString(16);
  var wallets = [];
  var busy = false;
  var READ_TIMEOUT_MS = 15000;  // a read that never answers: the wallet is gone (no user action is pending)

  function t(key, values) {
    return text[key].replace(/%\((\w+)\)s/g, function (all, name) {
      return values && Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : all;
    });
  }

  function say(message, isError, txHash) {
    statusEl.hidden = false;
    statusEl.className = "wallet-status" + (isError ? " error" : "");
    statusEl.textContent = message;
    if (txHash) {
      statusEl.appendChild(document.createTextNode(" " + t("transaction") + ": "));
      var link = document.createElement(data.explorerUrl ? "a" : "code");
      link.className = "hash";
      link.textContent = txHash;
      if (data.explorerUrl) {
        link.href = data.explorerUrl + "/tx/" + txHash;
        link.target = "_blank";
        link.rel = "noopener noreferrer";
      }
      statusEl.appendChild(link);
    }
  }

  // --- finding wallets (EIP-6963, then the legacy window.ethereum) ------------------------------------------
  window.addEventListener("eip6963:announceProvider", function (event) {
    var detail = event.detail;
    if (!detail || !detail.info || !detail.provider) return;
    if (wallets.some(function (w) { return w.info.uuid === detail.info.uuid; })) return;
    wallets = wallets.filter(function (w) { return w.info.uuid !== "legacy"; });
    wallets.push({ info: detail.info, provider: detail.provider });
    renderButtons();
  });
  window.dispatchEvent(new Event("eip6963:requestProvider"));
  setTimeout(function () {
    if (!wallets.length && window.ethereum) {
      wallets.push({ info: { uuid: "legacy", name: t("browser_wallet") }, provider: window.ethereum });
      renderButtons();
    }
  }, 300);

  function renderButtons() {
    buttons.textContent = "";
    wallets.forEach(function (wallet) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "wallet-button";
      if (typeof wallet.info.icon === "string" && /^data:image\//.test(wallet.info.icon)) {
        var icon = document.createElement("img");
        icon.src = wallet.info.icon;
        icon.alt = "";
        button.appendChild(icon);
      }
      button.appendChild(document.createTextNode(t("pay_with", { wallet: wallet.info.name })));
      button.addEventListener("click", function () { pay(wallet); });
      buttons.appendChild(button);
    });
    box.hidden = wallets.length === 0;
  }

  function setBusy(value) {
    busy = value;
    buttons.querySelectorAll("button").forEach(function (b) { b.disabled = value; });
  }

  // --- paying -------------------------------------------------------------------------------------------------
  async function pay(wallet) {
    if (busy) return;
    setBusy(true);
    var provider = wallet.provider;
    var step = { name: "connect" };
    watch(provider);
    try {
      say(t("connecting"));
      var accounts = await call(provider, "eth_requestAccounts");
      var from = accounts && accounts[0];
      if (!from) throw { gone: true };
      step.name = "switch";
      await ensureChain(provider);
      step.name = "send";
      var state = await currentState();
      if (!state || !state.awaiting_payment) { say(t("nothing_to_pay")); return; }
      var units = BigInt(state.amount_to_pay);
      await checkBalance(provider, from, units, state);
      say(t("confirm", { amount: state.amount_to_pay_local, asset: data.asset }));
      var hash = await call(provider, "eth_sendTransaction", [transaction(from, units)]);
      say(t("sent"), false, hash);
    } catch (error) {
      explain(error, step.name);
    } finally {
      setBusy(false);
    }
  }

  async function ensureChain(provider) {
    if (parseInt(await read(provider, "eth_chainId"), 16) === chainId) return;
    say(t("switching", { network: data.chainName }));
    try {
      await call(provider, "wallet_switchEthereumChain", [{ chainId: chainHex }]);
    } catch (error) {
      if (!unknownChain(error)) throw error;
      if (!data.rpcUrl) throw { addChain: true };
      var chain = {
        chainId: chainHex,
        chainName: data.chainName,
        nativeCurrency: { name: data.nativeSymbol, symbol: data.nativeSymbol, decimals: parseInt(data.nativeDecimals, 10) },
        rpcUrls: [data.rpcUrl],
      };
      if (data.explorerUrl) chain.blockExplorerUrls = [data.explorerUrl];
      await call(provider, "wallet_addEthereumChain", [chain]);
    }
    var now = parseInt(await read(provider, "eth_chainId"), 16);
    if (now !== chainId) throw { wrongChain: now };
  }

  async function checkBalance(provider, from, units, state) {
    var native = BigInt(await read(provider, "eth_getBalance", [from, "latest"]));
    if (!data.token) {
      if (native < units) throw { insufficient: "native", balance: native, state: state };
      return;
    }
    var raw = await read(provider, "eth_call", [{ to: data.token, data: "0x70a08231" + word(from) }, "latest"]);
    var balance = BigInt(raw && raw !== "0x" ? raw : "0x0");
    if (balance < units) throw { insufficient: "token", balance: balance, state: state };
    if (native === BigInt(0)) throw { noFee: true };
  }

  function transaction(from, units) {
    if (!data.token) return { from: from, to: data.to, value: "0x" + units.toString(16) };
    // ERC-20 transfer(address,uint256): selector a9059cbb, then the two arguments as 32-byte words.
    var calldata = "0xa9059cbb" + word(data.to) + units.toString(16).padStart(64, "0");
    return { from: from, to: data.token, value: "0x0", data: calldata };
  }

  function word(address) { return address.toLowerCase().replace(/^0x/, "").padStart(64, "0"); }

  function currentState() {
    return fetch(root.dataset.statusUrl, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; });
  }

  // --- talking to the wallet ------------------------------------------------------------------------------------
  function call(provider, method, params) {
    if (!provider || typeof provider.request !== "function") return Promise.reject({ gone: true });
    try {
      return Promise.resolve(provider.request(params ? { method: method, params: params } : { method: method }));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  // A read needs no action from the customer: one that never answers means the wallet went away.
  function read(provider, method, params) {
    return Promise.race([
      call(provider, method, params),
      new Promise(function (resolve, reject) { setTimeout(function () { reject({ gone: true }); }, READ_TIMEOUT_MS); }),
    ]);
  }

  function watch(provider) {
    if (provider.__paymentsGatewayWatched || typeof provider.on !== "function") return;
    provider.__paymentsGatewayWatched = true;
    provider.on("disconnect", function () { say(t("gone"), true); });
  }

  function code(error) { return error && typeof error.code === "number" ? error.code : null; }

  function unknownChain(error) {
    var inner = error && error.data && error.data.originalError;
    return code(error) === 4902 || (inner && inner.code === 4902);
  }

  function units(value, decimals) {
    var digits = value.toString().padStart(decimals + 1, "0");
    var whole = digits.slice(0, digits.length - decimals);
    var fraction = digits.slice(digits.length - decimals).replace(/0+$/, "");
    return fraction ? whole + data.decimalSeparator + fraction : whole;
  }

  function explain(error, step) {
    var c = code(error);
    var network = { network: data.chainName, chain: chainId };
    if ((error && error.gone) || c === 4900 || c === 4901 || error instanceof TypeError) {
      say(t("gone"), true);
    } else if (c === 4001) {
      var key = { connect: "rejected_connect", "switch": "rejected_switch", send: "rejected_send" }[step];
      say(t(key, network), true);
    } else if (c === -32002) {
      say(t("busy"), true);
    } else if (error && error.addChain) {
      say(t("add_chain", network), true);
    } else if (error && error.wrongChain !== undefined) {
      say(t("wrong_chain", { network: data.chainName, chain: chainId, current: error.wrongChain }), true);
    } else if (error && error.insufficient) {
      var decimals = parseInt(error.insufficient === "native" ? data.nativeDecimals : data.decimals, 10);
      say(t("insufficient_" + error.insufficient, {
        asset: data.asset, amount: error.state.amount_to_pay_local, balance: units(error.balance, decimals),
      }), true);
    } else if ((error && error.noFee) || /insufficient funds/i.test((error && error.message) || "")) {
      say(t("no_fee", { asset: data.nativeSymbol }), true);
    } else {
      say(t("failed", { reason: (error && error.message) || String(error) }), true);
    }
  }

  // Once nothing is left to pay (the status turned pending or paid), the wallet buttons go with the pay box.
  root.addEventListener("checkout:state", function (event) {
    box.hidden = wallets.length === 0 || !event.detail.awaiting_payment;
  });
})();
