// The Settings page's live preview: the framed page (console settings/preview) runs the real
// widget in preview mode; this feeds it the appearance form's current values as the manager
// types or clicks, by postMessage within our own origin. Nothing is saved or sent to a server.
export function attach(frame) {
  if (frame.dataset.attached) return;
  frame.dataset.attached = "true";
  const section = frame.closest("section");
  const form = section.querySelector("form");
  const toggles = [...section.querySelectorAll("[data-preview-online]")];
  const value = (name) => {
    const field = form.elements.namedItem(name);
    return field ? String(field.value) : "";
  };
  const online = () => !toggles.some((toggle) => toggle.checked && toggle.value === "offline");
  const setOnline = (wanted) => {
    for (const toggle of toggles) toggle.checked = (toggle.value === "online") === wanted;
  };

  function values() {
    return {
      name: frame.dataset.name || "",
      color: value("widget_color"),
      greeting_text: value("greeting_text"),
      offline_text: value("offline_text"),
      launcher_position: value("launcher_position") === "left" ? "left" : "right",
      prechat_fields: frame.dataset.prechat ? frame.dataset.prechat.split(",") : [],
      online: online(),
    };
  }

  function send() {
    if (frame.contentWindow) frame.contentWindow.postMessage({ parleyPreview: values() }, location.origin);
  }

  addEventListener("message", (event) => {
    if (event.source === frame.contentWindow && event.origin === location.origin && event.data?.parleyPreviewReady) send();
  });
  section.addEventListener("input", (event) => {
    // Writing the offline text shows the panel as it looks when nobody is online, and back.
    if (event.target.name === "offline_text") setOnline(false);
    else if (event.target.name === "greeting_text") setOnline(true);
    send();
  });
  section.addEventListener("change", send);
  send();

  // The frame keeps a desktop-like 520 px viewport (below 480 px the widget goes full screen, as
  // on a phone) and is scaled to fit the card.
  const box = frame.parentElement;
  const fit = () => box.style.setProperty("--preview-scale", String(Math.min(1, box.clientWidth / frame.offsetWidth)));
  new ResizeObserver(fit).observe(box);
  fit();
}
