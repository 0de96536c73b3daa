/* Parley widget loader, served as /widget.js (docs/widget.md).
 *   <script src="https://HOST/widget.js" data-project="PUBLIC_KEY" async></script>
 * Draws the launcher in a <parley-widget> element's shadow root, opens the visit, and loads
 * the panel (and the shared protocol client) when the browser is idle or at the first touch.
 * No inline styles or scripts: it runs under a strict Content-Security-Policy. window.Parley
 * queues calls until the panel is there. The server writes the hashed file names below. */
(() => {
  "use strict";
  const script = document.currentScript;
  const key = script && script.dataset.project;
  if (!key || customElements.get("parley-widget")) return;
  const manifest = "__PARLEY_MANIFEST__";
  const base = new URL(script.src).origin;
  const stored = "parley:" + key;
  const say = (text) => console.error("Parley: " + text);
  // data-preview: the console's Settings page draws the real panel from its form (postMessage
  // from the same origin) without a session, a socket or storage.
  const preview = script.hasAttribute("data-preview");

  // The host API. Calls before the panel loads are queued; a stub made by the host page
  // (window.Parley = function () { (Parley.q = Parley.q || []).push(arguments) }) is replayed.
  const handlers = {};
  const queue = [];
  let impl = null;
  const call = (name) => (...args) => impl ? impl[name](...args) : new Promise((resolve, reject) => {
    queue.push([name, args, resolve, reject]);
    load();
  });
  const stub = window.Parley;
  const api = { on(event, fn) { (handlers[event] = handlers[event] || []).push(fn); return api; } };
  for (const name of ["open", "close", "toggle", "identify", "reset", "setAttributes", "send"]) api[name] = call(name);
  window.Parley = api;
  const emit = (event, detail) => (handlers[event] || []).forEach((fn) => {
    try { fn(detail); } catch (error) { console.error(error); }
  });

  const read = () => { try { return JSON.parse(localStorage.getItem(stored)) || null; } catch { return null; } };
  const write = (value) => { try { localStorage.setItem(stored, JSON.stringify(value)); } catch { /* private mode */ } };

  /** POST /session: start or resume the visit (a stored identity is sent again, and dropped
   * when refused). Throws an Error with .code and .status. */
  async function session(identity, fallback) {
    const saved = read();
    const claim = identity || (!fallback && saved && saved.identity);
    const body = { public_key: key };
    if (saved && saved.visitor_uid) body.visitor_uid = saved.visitor_uid;
    if (claim) body.identity = claim;
    const response = await fetch(base + "/api/widget/v1/session", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (response.status === 401 && claim && !identity) return session(null, true);
    if (!response.ok) {
      const error = new Error(answer.message || "HTTP " + response.status);
      error.code = answer.code;
      error.status = response.status;
      throw error;
    }
    write(claim ? { ...answer, identity: claim } : answer);
    return answer;
  }

  const CSS = `:host{all:initial!important;position:fixed!important;z-index:2147483647!important;bottom:20px!important;
right:20px!important;left:auto!important;top:auto!important;display:block!important;visibility:visible!important;
opacity:1!important;transform:none!important;font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif!important;
color-scheme:light}:host([position=left]){left:20px!important;right:auto!important}:host([hidden]){display:none!important}
.launcher{all:unset;box-sizing:border-box;width:56px;height:56px;border-radius:50%;background:var(--parley-color,#2563eb);
color:#fff;display:grid;place-items:center;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);position:relative}
.launcher:focus-visible{outline:3px solid #111;outline-offset:3px}.launcher svg{width:28px;height:28px;fill:currentColor}
.badge{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;padding:0 5px;box-sizing:border-box;border-radius:10px;
background:#dc2626;color:#fff;font:700 12px/20px system-ui,sans-serif;text-align:center}.badge[hidden]{display:none}
@media (prefers-reduced-motion:no-preference){.badge{animation:pop .3s}@keyframes pop{from{transform:scale(.4)}}}`;

  class ParleyWidget extends HTMLElement {
    constructor() {
      super();
      const root = this.attachShadow({ mode: "open" });
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
      root.innerHTML = '<button class="launcher" type="button" aria-expanded="false">' +
        '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 1-2z"/></svg>' +
        '<span class="badge" hidden></span></button>';
      this.launcher = root.querySelector(".launcher");
      this.badge = root.querySelector(".badge");
      this.launcher.setAttribute("aria-label", "Chat");
      this.launcher.addEventListener("click", () => api.toggle());
      for (const name of ["pointerenter", "focus", "touchstart"]) this.launcher.addEventListener(name, load, { once: true, passive: true });
    }
  }
  customElements.define("parley-widget", ParleyWidget);
  const element = document.createElement("parley-widget");
  element.hidden = true;

  function show(visit) {
    element.style.setProperty("--parley-color", visit.widget.color);
    element.setAttribute("position", visit.widget.launcher_position === "left" ? "left" : "right");
    element.hidden = false;
  }

  let loading = null;
  let visit = null;
  let fresh = null;
  let refused = false;
  function load() {
    if (loading || !visit) return loading;
    // Mounted after the session's answer, so a refused site or key never opens a socket (a
    // returning visitor's launcher is drawn before it; offline, the saved session carries on).
    loading = Promise.all([import(base + manifest.panel), import(base + manifest.client),
      fresh && fresh.catch(() => {})]).then(([panel, client]) => {
      if (refused) return;
      impl = panel.mount({ element, root: element.shadowRoot, key, base, visit, fresh, session, read, write, emit,
        say, refuse, preview, snapshot: base + manifest.snapshot, Client: client.ParleyClient });
      for (const [name, args, resolve, reject] of queue.splice(0)) Promise.resolve(impl[name](...args)).then(resolve, reject);
    }).catch((error) => say("the chat panel could not be loaded (" + error.message + ")"));
    return loading;
  }

  function start(answer) {
    visit = answer;
    show(visit);
    const queued = stub && stub.q ? Array.from(stub.q) : [];
    for (const [name, ...args] of queued) if (api[name]) api[name](...args);
    if (queue.length) load();
    else (window.requestIdleCallback || ((fn) => setTimeout(fn, 1500)))(load, { timeout: 4000 });
  }

  /** The site or the key is refused (403 / 404, at the session, an API call or the socket):
   * the widget leaves the page and says why, once. */
  function refuse(error) {
    if (refused) return;
    refused = true;
    element.remove();
    if (impl && impl.stop) impl.stop();
    try { localStorage.removeItem(stored); } catch { /* private mode */ }
    for (const [, , , reject] of queue.splice(0)) reject(error);
    say(error.code === "origin_not_allowed"
      ? "this site (" + location.origin + ") is not an allowed origin of widget key " + key + "; add it in the project's settings."
      : error.code === "unknown_widget_key"
        ? "widget key " + key + " is unknown (rotated or removed): use the project's current key from its Install page."
        : "the widget could not start: " + error.message + (error.code ? " (" + error.code + ")" : ""));
  }

  (document.body || document.documentElement).appendChild(element);
  if (preview) {
    addEventListener("message", (event) => {
      const widget = event.origin === location.origin && event.data && event.data.parleyPreview;
      if (!widget) return;
      if (!visit) start({ widget, agents_online: widget.online, visitor: {} });
      visit.widget = widget;
      show(visit);
      if (impl) impl.preview(widget);
      else load();
    });
    if (parent !== window) parent.postMessage({ parleyPreviewReady: true }, location.origin);
    return;
  }
  const saved = read();
  fresh = session();
  // A returning visitor sees the launcher at once (and offline); the session is renewed behind it.
  if (saved && saved.token && saved.widget) start(saved);
  fresh.then((answer) => { if (!visit) start(answer); }, (error) => {
    if (error.status === 403 || error.status === 404) refuse(error);
    else if (!visit) say("the chat service cannot be reached (" + error.message + (error.code ? ", " + error.code : "") + ")");
  });
})();
