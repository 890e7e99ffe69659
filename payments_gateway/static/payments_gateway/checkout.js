// Live status for the hosted checkout page: Server-Sent Events, with JSON polling as a fallback.
// Without JavaScript the page still works (meta refresh + "Refresh status" link).
// Other scripts (wallet.js) hear of each new state through a "checkout:state" event on the page root.
(function () {
  "use strict";
  var root = document.getElementById("checkout");
  if (!root || !document.getElementById("status")) return;
  var $ = function (id) { return document.getElementById(id); };
  var lastToPay = null;
  var finished = false;
  var source = null;
  var redirecting = false;

  function render(state) {
    var box = $("status");
    box.className = "status status-" + state.status + " payment-" + state.payment_status;
    box.dataset.status = state.status;
    box.dataset.paymentStatus = state.payment_status;
    $("status-message").textContent = state.message;
    $("wrong-asset").textContent = state.wrong_asset_message || "";
    $("wrong-asset").hidden = !state.wrong_asset_message;
    var conf = $("confirmations");
    if (state.confirmations === null || state.status !== "open") {
      conf.hidden = true;
    } else {
      conf.hidden = false;
      $("confirmations-count").textContent = state.confirmations;
    }
    // Nothing left to pay (pending confirmations, paid): hide the amount and QR rather than ask again.
    if (state.awaiting_payment) {
      // People read the amount in their language's format; the copy button copies the exact machine value.
      $("amount-to-pay").textContent = state.amount_to_pay_local;
      $("copy-amount").dataset.copyValue = state.amount_to_pay_display;
      if (lastToPay !== null && lastToPay !== state.amount_to_pay) {
        $("qr").src = root.dataset.qrUrl + "?units=" + state.amount_to_pay;
      }
      lastToPay = state.amount_to_pay;
      $("payment-uri").href = state.payment_uri;
      $("qr-link").href = state.payment_uri;
    }
    renderTransactions(state.transactions || []);
    $("countdown").dataset.secondsLeft = state.seconds_left;
    var open = state.status === "open";
    $("pay-box").hidden = !state.awaiting_payment;
    ["test-wallet", "customer-card"].forEach(function (id) { if (!open && $(id)) $(id).hidden = true; });
    if ($("cancel-form")) $("cancel-form").hidden = !(open && state.payment_status === "unpaid");
    if ($("switch-method")) $("switch-method").hidden = !(open && state.can_switch);
    if (state.status === "complete") startRedirect();
    root.dispatchEvent(new CustomEvent("checkout:state", { detail: state }));
    if (!open) stop();
  }

  function renderTransactions(transactions) {
    var list = $("tx-list");
    if (list.children.length === transactions.length) return;
    list.textContent = "";
    transactions.forEach(function (tx) {
      var item = document.createElement("li");
      var el = document.createElement(tx.url ? "a" : "code");
      el.className = "hash";
      el.textContent = tx.hash;
      if (tx.url) { el.href = tx.url; el.target = "_blank"; el.rel = "noopener noreferrer"; }
      item.appendChild(el);
      list.appendChild(item);
    });
    $("transactions").hidden = transactions.length === 0;
  }

  // Paid: back to the shop by itself after a short countdown (the "Continue" button goes at once).
  function startRedirect() {
    var cont = $("continue"), note = $("redirect-note");
    if (!cont || redirecting) return;
    redirecting = true;
    cont.hidden = false;
    note.hidden = false;
    var left = parseInt(note.dataset.seconds, 10);
    var timer = setInterval(function () {
      left -= 1;
      $("redirect-seconds").textContent = Math.max(left, 0);
      if (left <= 0) { clearInterval(timer); window.location.assign(cont.href); }
    }, 1000);
  }

  function stop() {
    finished = true;
    if (source) source.close();
  }

  function poll() {
    if (finished) return;
    fetch(root.dataset.statusUrl, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (state) { if (state) render(state); })
      .catch(function () {});
  }

  function tick() {
    var el = $("countdown");
    var left = Math.max(parseInt(el.dataset.secondsLeft, 10) - 1, 0);
    el.dataset.secondsLeft = left;
    var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
    el.textContent = (h ? h + "h " : "") + (h || m ? m + "m " : "") + s + "s";
    if (left === 0) poll();
  }

  document.querySelectorAll("button.copy").forEach(function (button) {
    var label = button.textContent;
    button.addEventListener("click", function () {
      var text = button.dataset.copyValue;  // the exact value (a plain decimal, an address), never the display
      var done = function () { button.textContent = "✓"; setTimeout(function () { button.textContent = label; }, 1500); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () {});
      } else {
        var area = document.createElement("textarea");
        area.value = text; document.body.appendChild(area); area.select();
        try { document.execCommand("copy"); done(); } catch (e) { /* nothing to do */ }
        document.body.removeChild(area);
      }
    });
  });

  lastToPay = $("qr").dataset.units;
  setInterval(tick, 1000);
  tick();
  if ($("status").dataset.status === "complete") startRedirect();
  if ($("status").dataset.status !== "open") { finished = true; return; }
  if (window.EventSource) {
    source = new EventSource(root.dataset.eventsUrl);
    source.addEventListener("status", function (e) { render(JSON.parse(e.data)); });
  }
  // Polling as well, slower: covers proxies that buffer the stream.
  setInterval(poll, window.EventSource ? 5000 : 2000);
})();
