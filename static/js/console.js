// The console's own script: only what htmx cannot do. No inline scripts anywhere (strict CSP).
// - every htmx request carries the CSRF token from <meta name="csrf-token">;
// - [data-copy] buttons copy the text of the element they name;
// - [data-confirm-input] fields enable their form's submit button only once the typed text matches.
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

  // The Settings page's widget sketch follows the appearance form (CSSOM, so no inline style).
  function syncPreview(preview) {
    var form = preview.closest("section").querySelector("form");
    var color = form && form.querySelector('[name="widget_color"]');
    var position = form && form.querySelector('[name="launcher_position"]:checked');
    preview.style.setProperty("--preview-color", color ? color.value : preview.getAttribute("data-color"));
    if (position) preview.setAttribute("data-position", position.value);
    preview.querySelectorAll("[data-preview-text]").forEach(function (target) {
      var field = document.getElementById(target.getAttribute("data-preview-text"));
      if (field) target.textContent = field.value;
    });
  }

  document.addEventListener("input", function (event) {
    var section = event.target.closest && event.target.closest("section");
    var preview = section && section.querySelector("#widget-preview");
    if (preview) syncPreview(preview);
  });

  function setup(root) {
    root.querySelectorAll("[data-confirm-input]").forEach(syncConfirm);
    var preview = root.querySelector ? root.querySelector("#widget-preview") : null;
    if (preview) syncPreview(preview);
  }
  document.addEventListener("DOMContentLoaded", function () { setup(document); });
  document.addEventListener("htmx:load", function (event) { setup(event.detail.elt); });
})();
