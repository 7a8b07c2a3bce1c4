// Hlekkr dashboard behaviour. Loaded as a static file (no inline scripts), so a strict CSP holds.
(function () {
  "use strict";

  function setPressed(button, on) { if (button) { button.setAttribute("aria-pressed", on ? "true" : "false"); } }

  function toggleReveal() {
    var frame = document.querySelector("[data-wellness]");
    if (!frame) { return; }
    var on = frame.classList.toggle("revealed");
    var button = document.getElementById("reveal-toggle");
    setPressed(button, on);
    if (button) { button.textContent = on ? "Hide media" : "Reveal media"; }
  }

  // One overlay at a time: showing a detector's map hides the others. `h` cycles none -> each map -> none.
  function showOverlay(id) {
    var buttons = document.querySelectorAll(".overlay-toggle");
    for (var i = 0; i < buttons.length; i++) {
      var button = buttons[i];
      var target = document.getElementById(button.getAttribute("aria-controls"));
      var on = target !== null && target.id === id;
      if (target) { target.hidden = !on; }
      setPressed(button, on);
      button.textContent = (on ? "Hide " : "Show ") + button.getAttribute("data-label");
    }
  }

  function toggleOverlay(button) {
    var id = button.getAttribute("aria-controls");
    showOverlay(button.getAttribute("aria-pressed") === "true" ? null : id);
  }

  function cycleOverlays() {
    var buttons = document.querySelectorAll(".overlay-toggle");
    if (!buttons.length) { return; }
    for (var i = 0; i < buttons.length; i++) {
      if (buttons[i].getAttribute("aria-pressed") === "true") {
        showOverlay(i + 1 < buttons.length ? buttons[i + 1].getAttribute("aria-controls") : null);
        return;
      }
    }
    showOverlay(buttons[0].getAttribute("aria-controls"));
  }

  function typing(target) {
    var tag = (target && target.tagName) || "";
    return tag === "TEXTAREA" || tag === "SELECT" || (tag === "INPUT" && target.type !== "radio" && target.type !== "checkbox");
  }

  function pickVerdict(value) {
    var radio = document.querySelector('#decision-form input[name="verdict"][value="' + value + '"]');
    if (radio) { radio.checked = true; radio.focus(); }
  }

  // Single-key shortcuts can be turned off (WCAG 2.1.4: speech-input users would trigger them by accident).
  // The choice is kept per browser; Ctrl+Enter uses a modifier and stays on.
  var SHORTCUTS_KEY = "hlekkr.shortcuts";

  function shortcutsOn() {
    try { return window.localStorage.getItem(SHORTCUTS_KEY) !== "off"; } catch (e) { return true; }
  }

  function setShortcuts(on) {
    try { window.localStorage.setItem(SHORTCUTS_KEY, on ? "on" : "off"); } catch (e) { /* private mode: this page only */ }
    document.documentElement.setAttribute("data-shortcuts", on ? "on" : "off");
  }

  function initShortcutsToggle() {
    var on = shortcutsOn();
    document.documentElement.setAttribute("data-shortcuts", on ? "on" : "off");
    var toggle = document.getElementById("shortcuts-toggle");
    if (!toggle) { return; }
    toggle.checked = on;
    toggle.addEventListener("change", function () { setShortcuts(toggle.checked); });
  }

  function onKey(event) {
    var form = document.getElementById("decision-form");
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && form) {
      event.preventDefault();
      if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    if (document.documentElement.getAttribute("data-shortcuts") === "off") { return; }
    if (event.key === "r") { toggleReveal(); return; }
    if (event.key === "h") { cycleOverlays(); return; }
    if (!form) { return; }
    var verdicts = { a: "authentic", m: "manipulated", i: "inconclusive" };
    if (verdicts[event.key]) { event.preventDefault(); pickVerdict(verdicts[event.key]); return; }
    if (/^[0-9]$/.test(event.key)) {
      var confidence = form.querySelector('input[name="confidence"]');
      if (confidence) { confidence.value = event.key === "0" ? "1.0" : "0." + event.key; }
      event.preventDefault();
      return;
    }
    if (event.key === "n") {
      var notes = form.querySelector('textarea[name="notes"]');
      if (notes) { event.preventDefault(); notes.focus(); }
    }
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) { return; }
    if (target.closest("#reveal-toggle") || target.closest(".media-frame:not(.revealed) .guarded")) {
      if (target.tagName === "VIDEO" && target.closest(".revealed")) { return; }
      event.preventDefault();
      toggleReveal();
    } else if (target.closest(".overlay-toggle")) {
      toggleOverlay(target.closest(".overlay-toggle"));
    }
  });
  document.addEventListener("keydown", onKey);

  // The queue refreshes itself, but never under the user: while focus or the pointer is inside the table or
  // its filters, a due refresh waits until they leave. A changed queue is announced politely (aria-live).
  function initQueuePoll() {
    var rows = document.querySelector("[data-poll-seconds]");
    if (!rows || !window.htmx) { return; }
    var table = rows.closest("table") || rows;
    var filters = document.querySelector(".filters");
    var status = document.getElementById("queue-status");
    var pending = false;
    var hovering = false;
    var before = "";

    function busy() {
      var active = document.activeElement;
      var focused = active && active !== document.body && (table.contains(active) || (filters && filters.contains(active)));
      return Boolean(focused) || hovering || document.hidden;
    }

    function refresh() {
      if (busy()) { pending = true; return; }
      pending = false;
      before = rows.innerHTML;
      window.htmx.trigger(rows, "hlekkr:refresh");
    }

    function maybeRefreshPending() {
      if (pending) { window.setTimeout(refresh, 0); }
    }

    table.addEventListener("mouseenter", function () { hovering = true; });
    table.addEventListener("mouseleave", function () { hovering = false; maybeRefreshPending(); });
    document.addEventListener("focusout", function () { window.setTimeout(maybeRefreshPending, 0); });
    document.addEventListener("visibilitychange", maybeRefreshPending);
    rows.addEventListener("htmx:afterSwap", function () {
      if (status && before && rows.innerHTML !== before) {
        var count = rows.querySelectorAll("tr[data-item]").length;
        status.textContent = "Queue updated: " + count + (count === 1 ? " item" : " items") + " shown.";
      }
      before = "";
    });
    var seconds = parseInt(rows.getAttribute("data-poll-seconds"), 10) || 30;
    window.setInterval(refresh, seconds * 1000);
  }

  initShortcutsToggle();
  initQueuePoll();
})();
