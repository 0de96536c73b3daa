/* Parley widget: a sanitised copy of the visitor's page, for an agent's screenshot.
 * Loaded by the panel only when an agent of a project that turned DOM snapshots on asks for one
 * (screenshot.requested), so it costs nothing otherwise. docs/screenshots.md, "DOM snapshots".
 *
 * What leaves the browser is markup only, and never what the visitor typed or chose:
 * - every text-like input, textarea and contenteditable shows a fixed mask when it holds
 *   anything (and nothing when empty): not the value, not its length; password fields likewise;
 * - hidden inputs are removed (they carry tokens), checkboxes and radios are unchecked, and a
 *   select shows one masked option;
 * - scripts, frames, objects, templates, preloads, <base>, <meta http-equiv> and this widget
 *   are removed, and so is every on* attribute and every javascript: URL;
 * - styles the page built through the CSSOM (no text in the markup) are written out as rules;
 * - past maxBytes (UTF-8) nothing is sent but the reason. */

const MASK = "••••••";
const DROP = "script,noscript,iframe,frame,frameset,object,embed,applet,template,portal,parley-widget," +
  "link[rel~=preload],link[rel~=modulepreload],link[rel~=prefetch],link[rel~=prerender],link[rel~=import]," +
  "meta[http-equiv],base";
const FIELDS = "input,textarea,select,[contenteditable]";
const URL_ATTRIBUTES = new Set(["href", "src", "action", "formaction", "xlink:href", "data", "poster", "background", "srcset"]);
const KEEP_VALUE = new Set(["submit", "button", "reset", "image"]);
const UNSAFE_URL = /^[\s\u0000-\u001f]*(javascript|vbscript|data:text\/html)/i;

function cssOf(sheet) {
  try {
    return [...sheet.cssRules].map((rule) => rule.cssText).join("\n");
  } catch {
    return null; // another origin's sheet: its <link> stays and the renderer loads it
  }
}

function mask(original, copy) {
  const tag = original.tagName;
  if (tag === "INPUT") {
    const type = (original.getAttribute("type") || "text").toLowerCase();
    if (type === "hidden") return copy.remove();
    if (type === "checkbox" || type === "radio") return copy.removeAttribute("checked");
    if (KEEP_VALUE.has(type)) return; // a button's label, written by the site
    copy.removeAttribute("value");
    if (type === "file") return;
    if (original.value) copy.setAttribute("value", MASK);
  } else if (tag === "TEXTAREA") {
    copy.textContent = original.value ? MASK : "";
  } else if (tag === "SELECT") {
    copy.replaceChildren(new Option(MASK, "", true, true));
  } else if (original.isContentEditable) {
    copy.textContent = original.textContent.trim() ? MASK : "";
  }
}

/** The page as markup ({html}), or {error} when it cannot be sent. */
export function snapshot(doc, maxBytes) {
  const root = doc.documentElement.cloneNode(true);
  // Pair fields and style elements of the page with their copies before anything is removed.
  const originals = doc.documentElement.querySelectorAll(FIELDS), copies = root.querySelectorAll(FIELDS);
  originals.forEach((original, index) => copies[index] && mask(original, copies[index]));
  const styles = doc.documentElement.querySelectorAll("style"), copiedStyles = root.querySelectorAll("style");
  styles.forEach((style, index) => {
    const text = style.sheet && cssOf(style.sheet);
    if (text !== null && text !== undefined && copiedStyles[index]) copiedStyles[index].textContent = text;
  });
  for (const element of root.querySelectorAll(DROP)) element.remove();
  for (const element of [root, ...root.querySelectorAll("*")]) {
    for (const { name, value } of [...element.attributes]) {
      const lower = name.toLowerCase();
      if (lower.startsWith("on") || lower === "nonce" || lower === "srcdoc" ||
        (URL_ATTRIBUTES.has(lower) && UNSAFE_URL.test(value))) element.removeAttribute(name);
    }
  }
  const adopted = (doc.adoptedStyleSheets || []).map(cssOf).filter(Boolean).join("\n");
  if (adopted) {
    const style = doc.createElement("style");
    style.textContent = adopted;
    (root.querySelector("head") || root).appendChild(style);
  }
  const html = "<!DOCTYPE html>\n" + root.outerHTML;
  if (new Blob([html]).size > maxBytes) return { error: "snapshot_too_large" };
  return { html };
}

const NOTICE_CSS = `.snapshot-notice{position:absolute;bottom:72px;right:0;width:max-content;max-width:min(320px,calc(100vw - 40px));
margin:0;padding:10px 14px;border-radius:10px;background:#111827;color:#fff;font:14px/1.4 system-ui,sans-serif;
box-shadow:0 6px 20px rgba(0,0,0,.3)}:host([position=left]) .snapshot-notice{right:auto;left:0}`;

let styled = false;

/** Tell the visitor a copy was taken: in the open panel's status line, or above the launcher. */
export function notice(root, text, statusLine) {
  if (statusLine) {
    statusLine.textContent = text;
    statusLine.hidden = false;
    return setTimeout(() => { if (statusLine.textContent === text) statusLine.hidden = true; }, 8000);
  }
  if (!styled) {
    styled = true;
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(NOTICE_CSS);
    root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
  }
  root.querySelector(".snapshot-notice")?.remove();
  const line = document.createElement("p");
  line.className = "snapshot-notice";
  line.setAttribute("role", "status");
  line.textContent = text;
  root.appendChild(line);
  return setTimeout(() => line.remove(), 8000);
}
