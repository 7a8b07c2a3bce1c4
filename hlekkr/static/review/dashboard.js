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

  function toggleHeatmap() {
    var overlay = document.getElementById("ela-overlay");
    if (!overlay) { return; }
    overlay.hidden = !overlay.hidden;
    var button = document.getElementById("ela-toggle");
    setPressed(button, !overlay.hidden);
    if (button) { button.textContent = overlay.hidden ? "Show ELA heatmap overlay" : "Hide ELA heatmap overlay"; }
  }

  function typing(target) {
    var tag = (target && target.tagName) || "";
    return tag === "TEXTAREA" || tag === "SELECT" || (tag === "INPUT" && target.type !== "radio" && target.type !== "checkbox");
  }

  function pickVerdict(value) {
    var radio = document.querySelector('#decision-form input[name="verdict"][value="' + value + '"]');
    if (radio) { radio.checked = true; radio.focus(); }
  }

  function onKey(event) {
    var form = document.getElementById("decision-form");
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && form) {
      event.preventDefault();
      if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    if (event.key === "r") { toggleReveal(); return; }
    if (event.key === "h") { toggleHeatmap(); return; }
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
    } else if (target.closest("#ela-toggle")) {
      toggleHeatmap();
    }
  });
  document.addEventListener("keydown", onKey);
})();
