// The console's own script: only what htmx cannot do. No inline scripts anywhere (strict CSP).
// - every htmx request carries the CSRF token from <meta name="csrf-token">;
// - [data-copy] buttons copy the text of the element they name;
// - [data-confirm-input] fields enable their form's submit button only once the typed text matches;
// - the Settings page's widget preview is fed by static/js/widget-preview.js.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    var text = "value" in source ? source.value : source.textContent;
    navigator.clipboard.writeText(text.trim()).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      button.setAttribute("aria-live", "polite");
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  function syncConfirm(input) {
    var form = input.form;
    if (!form) return;
    var ok = input.value.trim() === input.getAttribute("data-confirm-input");
    form.querySelectorAll("[data-confirm-submit]").forEach(function (button) { button.disabled = !ok; });
  }

  document.addEventListener("input", function (event) {
    if (event.target.matches && event.target.matches("[data-confirm-input]")) syncConfirm(event.target);
  });

  // The Settings page's live preview of the real widget (static/js/widget-preview.js), loaded
  // only where the page has one.
  function preview(root) {
    var frame = root.querySelector ? root.querySelector("#widget-preview-frame") : null;
    if (frame) import("/static/js/widget-preview.js").then(function (module) { module.attach(frame); });
  }

  function setup(root) {
    root.querySelectorAll("[data-confirm-input]").forEach(syncConfirm);
    preview(root);
  }
  document.addEventListener("DOMContentLoaded", function () { setup(document); });
  document.addEventListener("htmx:load", function (event) { setup(event.detail.elt); });
})();
