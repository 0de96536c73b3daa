/* Parley widget panel: loaded by the loader (/widget.js) at idle or first touch, as an ES module.
 * mount(ctx) draws the chat panel in the <parley-widget> shadow root, talks to the widget API
 * and the /visitor namespace (through the shared ParleyClient), and returns the host API
 * (open, close, toggle, identify, reset, setAttributes, send). docs/widget.md describes it. */

const MAX_BODY = 5000;
const RETRYABLE = new Set(["unavailable", "timeout", "disconnected", "not_connected", "rate_limited", "internal"]);
const STATE_RANK = { sending: 0, sent: 1, delivered: 2, read: 3, failed: 4 };
const REFUSALS = new Set(["origin_not_allowed", "unknown_widget_key"]); // the widget leaves the page

const STRINGS = {
  en: {
    chat: "Chat", open: "Open chat", close: "Close chat", online: "We're online", away: "We're away",
    placeholder: "Write a message…", send: "Send", you: "You", agent: "Agent", typing: "{name} is typing…",
    sending: "Sending…", sent: "Sent", delivered: "Delivered", read: "Read", failed: "Not sent",
    mute: "Mute sounds", offline: "You are offline. Your messages will be sent when the connection is back.",
    email: "Your e-mail", name: "Your name", message: "Message", leave: "Leave your e-mail",
    thanks: "Thanks! We will reply to {email}.", start: "Start the chat", earlier: "New conversation",
    tooLong: "This message is too long (at most 5,000 characters).", empty: "The message is empty.",
    rateLimited: "You are sending messages too fast. Try again in {s} seconds.",
    gone: "This chat is no longer available.", refused: "The message was refused: {m}",
    newFrom: "New message from {name}", messages: "Messages", badEmail: "Please enter a valid e-mail address.",
    snapshot: "Our support team took a snapshot of this page to help you (what you typed stays hidden).",
  },
  de: {
    chat: "Chat", open: "Chat öffnen", close: "Chat schließen", online: "Wir sind online", away: "Wir sind gerade nicht da",
    placeholder: "Nachricht schreiben…", send: "Senden", you: "Sie", agent: "Team", typing: "{name} schreibt…",
    sending: "Wird gesendet…", sent: "Gesendet", delivered: "Zugestellt", read: "Gelesen", failed: "Nicht gesendet",
    mute: "Töne aus", offline: "Sie sind offline. Ihre Nachrichten werden gesendet, sobald die Verbindung wieder da ist.",
    email: "Ihre E-Mail-Adresse", name: "Ihr Name", message: "Nachricht", leave: "E-Mail hinterlassen",
    thanks: "Danke! Wir antworten an {email}.", start: "Chat beginnen", earlier: "Neue Unterhaltung",
    tooLong: "Diese Nachricht ist zu lang (höchstens 5.000 Zeichen).", empty: "Die Nachricht ist leer.",
    rateLimited: "Sie senden zu schnell. Bitte in {s} Sekunden erneut versuchen.",
    gone: "Dieser Chat ist nicht mehr verfügbar.", refused: "Die Nachricht wurde abgelehnt: {m}",
    newFrom: "Neue Nachricht von {name}", messages: "Nachrichten", badEmail: "Bitte eine gültige E-Mail-Adresse eingeben.",
    snapshot: "Unser Support hat eine Momentaufnahme dieser Seite gemacht, um Ihnen zu helfen (Ihre Eingaben bleiben verborgen).",
  },
};

function pickLanguage() {
  for (const tag of navigator.languages || [navigator.language || "en"]) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (STRINGS[base]) return base;
  }
  return "en";
}

const CSS = `
*{box-sizing:border-box}
[hidden]{display:none!important}
.panel{position:absolute;bottom:72px;right:0;width:370px;height:min(600px,calc(100vh - 110px));display:flex;
 flex-direction:column;background:#fff;color:#111827;border-radius:14px;overflow:hidden;box-shadow:0 10px 40px rgba(0,0,0,.28)}
:host([position=left]) .panel{right:auto;left:0}
.header{background:var(--parley-color,#2563eb);color:#fff;padding:14px 12px 12px 16px;display:flex;gap:8px;align-items:flex-start}
.header>div{flex:1;min-width:0}
.title{margin:0;font-size:17px;font-weight:650}
.availability{margin:2px 0 0;font-size:13px;opacity:.92}
.availability::before{content:"";display:inline-block;width:8px;height:8px;border-radius:50%;background:#9ca3af;margin-right:6px}
.availability.is-online::before{background:#4ade80}
.icon{all:unset;cursor:pointer;width:32px;height:32px;border-radius:8px;display:grid;place-items:center;color:#fff;font-size:18px}
.icon:hover{background:rgba(255,255,255,.18)}.icon:focus-visible{outline:2px solid #fff}
.icon svg{width:20px;height:20px;fill:currentColor}.icon .slash{display:none}.icon[aria-pressed=true] .slash{display:inline}
.log{flex:1;overflow-y:auto;padding:14px;display:flex;flex-direction:column;gap:8px;background:#f9fafb}
.greeting{margin:0;align-self:flex-start;background:#fff;border:1px solid #e5e7eb;border-radius:12px;padding:9px 12px;max-width:85%}
.conversation{display:flex;flex-direction:column;gap:8px}
.divider{margin:6px 0;text-align:center;font-size:12px;color:#4b5563}
.message{max-width:82%;align-self:flex-start;display:flex;flex-direction:column}
.message--visitor{align-self:flex-end;align-items:flex-end}
.message--system{align-self:center;font-size:13px;color:#4b5563}
.message__meta{font-size:12px;color:#4b5563;margin:0 4px 2px}
.message__body{margin:0;padding:9px 12px;border-radius:12px;background:#fff;border:1px solid #e5e7eb;white-space:pre-wrap;overflow-wrap:anywhere}
.message--visitor .message__body{background:var(--parley-color,#2563eb);border-color:transparent;color:#fff}
.message__state{font-size:11px;color:#4b5563;margin:2px 4px 0}
.message--failed .message__body{opacity:.6}.message--failed .message__state{color:#b91c1c}
.typing,.status,.notice{margin:0;padding:4px 16px;font-size:13px;color:#4b5563;background:#f9fafb}
.notice{color:#b91c1c}
form{margin:0}
.composer{display:flex;gap:8px;padding:10px;border-top:1px solid #e5e7eb;background:#fff}
textarea,input{font:inherit;color:#111827;background:#fff;border:1px solid #9ca3af;border-radius:8px;padding:8px 10px;width:100%}
textarea{resize:none;height:42px;max-height:120px}
textarea:focus,input:focus{outline:2px solid var(--parley-color,#2563eb);outline-offset:1px}
.send,.submit{all:unset;cursor:pointer;background:var(--parley-color,#2563eb);color:#fff;border-radius:8px;padding:0 14px;font-weight:600;min-height:42px;display:grid;place-items:center}
.send:focus-visible,.submit:focus-visible{outline:2px solid #111;outline-offset:2px}
.card{display:flex;flex-direction:column;gap:8px;padding:12px 14px;border-top:1px solid #e5e7eb;background:#fff}
.card p{margin:0}
label{display:flex;flex-direction:column;gap:3px;font-size:13px;color:#374151}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media (max-width:480px){.panel{position:fixed;inset:0;width:auto;height:auto;border-radius:0}}
@media (prefers-reduced-motion:no-preference){.panel{animation:rise .18s ease-out}@keyframes rise{from{opacity:0;transform:translateY(8px)}}}
@media (prefers-color-scheme:dark){.panel{background:#111827;color:#f9fafb}.log,.typing,.status{background:#1f2937}
 .greeting,.message__body{background:#111827;border-color:#374151;color:#f9fafb}.message__meta,.message__state,.divider,.typing,.status{color:#d1d5db}
 .composer,.card{background:#111827;border-color:#374151}label{color:#e5e7eb}textarea,input{background:#1f2937;color:#f9fafb}}
`;

const PANEL_HTML = `
<section class="panel" role="dialog" aria-labelledby="parley-title" hidden>
 <header class="header"><div><h2 class="title" id="parley-title"></h2><p class="availability"></p></div>
  <button class="icon mute" type="button" aria-pressed="false"><svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 22a2 2 0 0 0 2-2h-4a2 2 0 0 0 2 2zm6-6v-5a6 6 0 0 0-5-5.9V4a1 1 0 0 0-2 0v1.1A6 6 0 0 0 6 11v5l-2 2v1h16v-1z"/><path class="slash" d="M3 4.5 4.5 3 21 19.5 19.5 21z"/></svg></button>
  <button class="icon close" type="button">&#10005;</button></header>
 <div class="log" role="log" aria-live="polite" tabindex="0"><p class="greeting"></p></div>
 <p class="typing" aria-live="polite" hidden></p>
 <p class="status" role="status" hidden></p>
 <p class="notice" role="alert" hidden></p>
 <form class="card prechat" hidden><label data-field="name"><span></span><input name="name" autocomplete="name" maxlength="200"></label>
  <label data-field="email"><span></span><input name="email" type="email" autocomplete="email" maxlength="254"></label>
  <button class="submit" type="submit"></button></form>
 <form class="card offline" hidden><p class="offline-text"></p>
  <label><span></span><input name="email" type="email" required autocomplete="email" maxlength="254"></label>
  <label><span></span><textarea name="message" maxlength="4736"></textarea></label>
  <button class="submit" type="submit"></button></form>
 <form class="composer"><label class="sr" for="parley-input"></label>
  <textarea id="parley-input" name="body" maxlength="${MAX_BODY}" rows="1"></textarea>
  <button class="send" type="submit"></button></form>
</section>`;

/** A version-4 UUID from getRandomValues (crypto.randomUUID needs a secure context). */
function uuid() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 15) | 64;
  b[8] = (b[8] & 63) | 128;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function mount(ctx) {
  const { root, element, key, base } = ctx;
  const lang = pickLanguage();
  const T = STRINGS[lang];
  const t = (name, values = {}) => T[name].replace(/\{(\w+)\}/g, (_, k) => values[k] ?? "");
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(CSS);
  root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
  const holder = document.createElement("div");
  holder.innerHTML = PANEL_HTML;
  const panel = holder.firstElementChild;
  root.appendChild(panel);
  const $ = (selector) => panel.querySelector(selector);
  const log = $(".log"), input = $("#parley-input"), typingLine = $(".typing"), status = $(".status"), notice = $(".notice");
  const prechat = $(".prechat"), offlineForm = $(".offline"), composer = $(".composer");
  const launcher = element.launcher, badge = element.badge;

  const storeKey = (name) => `parley:${key}:${name}`;
  const load = (name, fallback) => { try { return JSON.parse(localStorage.getItem(storeKey(name))) ?? fallback; } catch { return fallback; } };
  const save = (name, value) => { try { localStorage.setItem(storeKey(name), JSON.stringify(value)); } catch { /* full or private */ } };

  let visit = ctx.visit;
  let client = null;
  let isOpen = false;
  let agentsOnline = Boolean(visit.agents_online);
  let profile = visit.visitor || {};
  let contactSent = false;
  const agents = new Map();
  const boxes = new Map(); // conversation id -> {element, seqs: Map<seq, element>, status}
  const own = new Map(); // client_msg_id -> {element, state}
  let readUpTo = new Map(); // conversation id -> seq read by an agent
  let historyLoaded = false;
  let ready = false;
  let stopped = false;

  // ---- static text -------------------------------------------------------------------------
  launcher.setAttribute("aria-label", t("open"));
  $(".close").setAttribute("aria-label", t("close"));
  $(".mute").setAttribute("aria-label", t("mute"));
  $(".log").setAttribute("aria-label", t("messages"));
  input.placeholder = t("placeholder");
  $(".composer label").textContent = t("message");
  $(".send").textContent = t("send");
  prechat.querySelector("[data-field=name] span").textContent = t("name");
  prechat.querySelector("[data-field=email] span").textContent = t("email");
  prechat.querySelector(".submit").textContent = t("start");
  offlineForm.querySelectorAll("label span")[0].textContent = t("email");
  offlineForm.querySelectorAll("label span")[1].textContent = t("message");
  offlineForm.querySelector(".submit").textContent = t("leave");

  function applySettings() {
    const widget = visit.widget;
    element.style.setProperty("--parley-color", widget.color);
    element.setAttribute("position", widget.launcher_position === "left" ? "left" : "right");
    $(".title").textContent = widget.name;
    $(".greeting").textContent = widget.greeting_text;
    $(".offline-text").textContent = widget.offline_text;
    renderAvailability();
  }

  function renderAvailability() {
    const line = $(".availability");
    line.textContent = agentsOnline ? t("online") : t("away");
    line.classList.toggle("is-online", agentsOnline);
    const needsPrechat = (visit.widget.prechat_fields || []).filter((field) => !profile[field]);
    const showPrechat = needsPrechat.length > 0 && !profile.verified && boxes.size === 0;
    prechat.hidden = !showPrechat;
    for (const label of prechat.querySelectorAll("label")) label.hidden = !needsPrechat.includes(label.dataset.field);
    const showOffline = !showPrechat && !agentsOnline && !profile.email && !contactSent;
    offlineForm.hidden = !showOffline;
    composer.hidden = showPrechat || showOffline;
  }

  // ---- REST ----------------------------------------------------------------------------------
  async function rest(method, path, body, retried = false) {
    const response = await fetch(base + "/api/widget/v1" + path, {
      method,
      headers: { authorization: "Bearer " + visit.token, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const answer = await response.json().catch(() => ({}));
    if (response.status === 401 && !retried) {
      await refresh();
      return rest(method, path, body, true);
    }
    if (!response.ok) {
      const error = new Error(answer.message || "HTTP " + response.status);
      error.code = answer.code;
      if (REFUSALS.has(error.code)) ctx.refuse(error);
      throw error;
    }
    return answer;
  }

  let refreshTimer = null;
  async function refresh(identity) {
    let answer;
    try {
      answer = await ctx.session(identity);
    } catch (error) {
      if (error.status === 403 || error.status === 404) ctx.refuse(error);
      throw error;
    }
    const switched = answer.visitor_uid !== visit.visitor_uid;
    visit = answer;
    agentsOnline = Boolean(answer.agents_online);
    profile = answer.visitor || {};
    applySettings();
    scheduleRefresh();
    if (switched) await switchVisitor();
    return answer;
  }

  // Renew the token a minute before it expires (half its life when it lives under two minutes).
  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    if (stopped) return;
    const left = visit.expires_at * 1000 - Date.now();
    const inMs = Math.max(1000, left > 120000 ? left - 60000 : left / 2);
    refreshTimer = setTimeout(() => refresh().catch(() => { refreshTimer = setTimeout(scheduleRefresh, 5000); }), inMs);
  }

  // ---- rendering -----------------------------------------------------------------------------
  const clock = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit" });
  const timeOf = (value) => new Date(typeof value === "number" ? value * 1000 : value || Date.now());

  function box(conversationId, status) {
    let entry = boxes.get(conversationId);
    if (entry) {
      if (status) entry.status = status;
      return entry;
    }
    const element = document.createElement("div");
    element.className = "conversation";
    element.dataset.id = conversationId;
    entry = { element, seqs: new Map(), status: status || "open" };
    const later = [...boxes.keys()].filter((id) => id > conversationId).sort((a, b) => a - b);
    const before = later.length ? boxes.get(later[0]).element : pending;
    log.insertBefore(element, before);
    boxes.set(conversationId, entry);
    for (const [id, other] of boxes) other.element.classList.toggle("is-earlier", id !== newestConversation());
    divide();
    return entry;
  }

  function divide() {
    for (const entry of boxes.values()) {
      const first = entry.element.firstElementChild;
      const earlier = entry.element.previousElementSibling && entry.element.previousElementSibling.classList.contains("conversation");
      if (earlier && !(first && first.classList.contains("divider"))) {
        const divider = document.createElement("p");
        divider.className = "divider";
        divider.textContent = t("earlier");
        entry.element.prepend(divider);
      }
    }
  }

  const newestConversation = () => Math.max(0, ...boxes.keys());

  const pending = document.createElement("div");
  pending.className = "conversation pending";
  log.appendChild(pending);

  function messageElement(message) {
    const element = document.createElement("div");
    const kind = message.sender_kind || "visitor";
    element.className = "message message--" + kind;
    const meta = document.createElement("p");
    meta.className = "message__meta";
    const author = kind === "visitor" ? t("you") : kind === "agent" ? agentName(message.sender_user_id) : "";
    const when = timeOf(message.created_at);
    const time = document.createElement("time");
    time.dateTime = when.toISOString();
    time.textContent = clock.format(when);
    meta.append(author ? author + " · " : "", time);
    const body = document.createElement("p");
    body.className = "message__body";
    body.textContent = message.body; // text, never markup
    element.append(meta, body);
    if (kind === "visitor") {
      const state = document.createElement("p");
      state.className = "message__state";
      element.appendChild(state);
    }
    return element;
  }

  function setState(clientMsgId, state, reason) {
    const entry = own.get(clientMsgId);
    if (!entry || STATE_RANK[state] < STATE_RANK[entry.state]) return;
    entry.state = state;
    entry.element.dataset.state = state;
    entry.element.classList.toggle("message--failed", state === "failed");
    entry.element.querySelector(".message__state").textContent = reason ? t("failed") + ": " + reason : t(state);
  }

  function agentName(userId) {
    if (agents.has(userId)) return agents.get(userId);
    if (userId != null) loadAgents();
    return t("agent");
  }

  let agentsLoading = null;
  function loadAgents() {
    if (agentsLoading) return agentsLoading;
    agentsLoading = rest("GET", "/agents").then((answer) => {
      for (const agent of answer.items) agents.set(agent.id, agent.name);
      for (const element of log.querySelectorAll(".message--agent[data-user]")) {
        const name = agents.get(Number(element.dataset.user));
        if (name) element.querySelector(".message__meta").firstChild.textContent = name + " · ";
      }
    }).catch(() => {}).finally(() => setTimeout(() => { agentsLoading = null; }, 30000));
    return agentsLoading;
  }

  /** Show one stored message in its conversation, in seq order; own pending ones move there. */
  function show(message) {
    const entry = box(message.conversation_id);
    if (entry.seqs.has(message.seq)) return null;
    let element;
    const mine = message.client_msg_id && own.get(message.client_msg_id);
    if (mine) {
      element = mine.element;
    } else {
      element = messageElement(message);
      if (message.sender_kind === "visitor") {
        own.set(message.client_msg_id, { element, state: "delivered" });
        setState(message.client_msg_id, "delivered");
      }
    }
    element.dataset.seq = message.seq;
    if (message.sender_user_id != null) element.dataset.user = message.sender_user_id;
    let after = null;
    for (const [seq, other] of entry.seqs) if (seq < message.seq && (!after || seq > Number(after.dataset.seq))) after = other;
    if (after) after.after(element);
    else {
      const divider = entry.element.querySelector(".divider");
      if (divider) divider.after(element); else entry.element.prepend(element);
    }
    entry.seqs.set(message.seq, element);
    if (message.sender_kind === "visitor" && message.client_msg_id) {
      setState(message.client_msg_id, (readUpTo.get(message.conversation_id) || 0) >= message.seq ? "read" : "delivered");
    }
    return element;
  }

  function showPending(item) {
    if (own.has(item.client_msg_id)) return;
    const element = messageElement({ body: item.body, sender_kind: "visitor", created_at: item.at / 1000 });
    pending.appendChild(element);
    own.set(item.client_msg_id, { element, state: "sending" });
    setState(item.client_msg_id, "sending");
  }

  function scrollDown() {
    log.scrollTop = log.scrollHeight;
  }

  // ---- unread, sound, title ------------------------------------------------------------------
  let lastRead = load("read", {});
  let unread = 0;
  const baseTitle = () => document.title.replace(/^\(\d+\) /, "");
  const muted = () => load("muted", false);

  function countUnread() {
    let count = 0;
    for (const [id, entry] of boxes) {
      for (const [seq, element] of entry.seqs) {
        if (seq > (lastRead[id] || 0) && element.classList.contains("message--agent")) count++;
      }
    }
    if (count !== unread) {
      unread = count;
      ctx.emit("unread", { count });
    }
    badge.hidden = !count || isOpen;
    badge.textContent = count > 9 ? "9+" : String(count);
    const title = baseTitle();
    const wanted = count && !isOpen ? `(${count}) ${title}` : title;
    if (document.title !== wanted) document.title = wanted;
  }

  function markRead() {
    if (!isOpen || document.hidden || ctx.preview) return;
    lastRead = load("read", {});
    for (const [id, entry] of boxes) {
      const top = Math.max(0, ...entry.seqs.keys());
      if (top > (lastRead[id] || 0)) {
        lastRead[id] = top;
        if (client) client.notify("read", { conversation_id: id, seq: top });
      }
    }
    save("read", lastRead);
    countUnread();
  }

  let audio = null;
  function beep() {
    if (muted() || !audio) return;
    const oscillator = audio.createOscillator(), gain = audio.createGain();
    oscillator.frequency.value = 880;
    gain.gain.setValueAtTime(0.08, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.25);
    oscillator.connect(gain).connect(audio.destination);
    oscillator.start();
    oscillator.stop(audio.currentTime + 0.25);
  }
  function unlockAudio() {
    if (!audio && window.AudioContext) {
      try { audio = new AudioContext(); } catch { audio = null; }
    }
  }

  function renderMute() {
    $(".mute").setAttribute("aria-pressed", String(muted()));
  }

  // ---- history and the socket ----------------------------------------------------------------
  async function loadHistory() {
    const answer = await rest("GET", "/conversations");
    const items = answer.items.slice().sort((a, b) => a.id - b.id);
    // Also for conversations the client follows already (a live message started them): what
    // lies below their first live message comes from here, shown once by seq.
    for (const conversation of items) {
      box(conversation.id, boxes.has(conversation.id) ? undefined : conversation.status);
      for (const message of conversation.messages) show(message);
      if (client) client.track(conversation.id, conversation.last_seq);
    }
    historyLoaded = true;
    renderAvailability();
    countUnread();
    scrollDown();
    return items;
  }

  function connect() {
    if (client) client.close();
    if (stopped) return;
    const socket = new ctx.Client({
      url: visit.realtime_url,
      namespace: "/visitor",
      auth: async (lastError) => {
        if (lastError === "token_expired" || lastError === "invalid_token" || visit.expires_at * 1000 - Date.now() < 30000) {
          await refresh();
        }
        return { token: visit.token };
      },
    });
    client = socket;
    for (const [id] of boxes) socket.track(id, Math.max(0, ...boxes.get(id).seqs.keys()));
    socket.on("state", ({ state }) => {
      if (socket !== client) return;
      status.hidden = state === "connected" || state === "connecting" && navigator.onLine;
      status.textContent = t("offline");
    });
    socket.on("connect", async ({ recovered }) => {
      if (socket !== client) return;
      status.hidden = true;
      // A first load that failed (offline), or conversations another tab started meanwhile.
      if (!historyLoaded || recovered) await loadHistory().catch(() => {});
      reportNavigation(true);
      sendInfo();
      flush();
      rest("GET", "/availability").then((a) => { agentsOnline = a.agents_online; renderAvailability(); }, () => {});
    });
    socket.on("synced", () => {
      countUnread();
      markRead();
      if (!ready) ctx.emit("ready", { visitor_uid: visit.visitor_uid });
      ready = true;
    });
    socket.on("connect_error", ({ code, message, fatal }) => {
      if (REFUSALS.has(code)) ctx.refuse({ code, message });
      else if (fatal) ctx.say(`the chat connection was refused: ${message} (${code})`);
    });
    socket.on("message.created", ({ data, source }) => {
      const element = show(data);
      if (!element) return;
      if (data.sender_kind === "agent") {
        typingLine.hidden = true;
        if (source === "live" && (!isOpen || document.hidden)) beep();
        if (!isOpen) notice.hidden = true;
      }
      renderAvailability();
      ctx.emit("message", { ...data });
      markRead();
      countUnread();
      if (isOpen) scrollDown();
    });
    socket.on("conversation.read", ({ data }) => {
      if (!data.reader || data.reader.kind !== "agent") return;
      const id = data.id || data.conversation_id;
      readUpTo.set(id, Math.max(readUpTo.get(id) || 0, data.seq));
      const entry = boxes.get(id);
      if (!entry) return;
      for (const [seq, element] of entry.seqs) {
        const mine = [...own].find(([, value]) => value.element === element);
        if (mine && seq <= data.seq) setState(mine[0], "read");
      }
    });
    socket.on("conversation.status_changed", ({ data }) => {
      const id = data.id || data.conversation_id;
      if (boxes.has(id)) boxes.get(id).status = data.status;
    });
    let typingTimer = null;
    socket.on("typing.started", ({ data }) => {
      if (!data.sender || data.sender.kind !== "agent") return;
      typingLine.textContent = t("typing", { name: agentName(data.sender.user_id) });
      typingLine.hidden = false;
      clearTimeout(typingTimer);
      typingTimer = setTimeout(() => { typingLine.hidden = true; }, 8000);
    });
    socket.on("screenshot.requested", ({ data }) => snapshot(data));
    socket.on("typing.stopped", ({ data }) => {
      if (data.sender && data.sender.kind === "agent") typingLine.hidden = true;
    });
    socket.connect();
  }

  async function switchVisitor() {
    for (const entry of boxes.values()) entry.element.remove();
    boxes.clear();
    own.clear();
    pending.textContent = "";
    readUpTo = new Map();
    historyLoaded = false;
    for (const item of load("outbox", [])) showPending(item);
    connect();
  }

  // ---- sending and the offline outbox --------------------------------------------------------
  const outbox = () => load("outbox", []);
  const dropFromOutbox = (clientMsgId) => save("outbox", outbox().filter((item) => item.client_msg_id !== clientMsgId));

  function reason(error) {
    if (error.code === "rate_limited") return t("rateLimited", { s: Math.ceil(error.retryAfter || 5) });
    if (error.code === "body_too_long" || /length|long/i.test(error.message || "")) return t("tooLong");
    if (error.code === "empty_body") return t("empty");
    if (["not_found", "forbidden", "unknown_widget_key"].includes(error.code)) return t("gone");
    return t("refused", { m: error.message || error.code });
  }

  function say(text) {
    notice.textContent = text;
    notice.hidden = !text;
  }

  let flushing = false;
  async function flush() {
    if (flushing || !client || client.state !== "connected") return;
    flushing = true;
    const work = async () => {
      for (;;) {
        const item = outbox()[0];
        if (!item || client.state !== "connected") return;
        try {
          await client.emit("message:send", { body: item.body, client_msg_id: item.client_msg_id });
          dropFromOutbox(item.client_msg_id);
          setState(item.client_msg_id, "sent");
        } catch (error) {
          if (RETRYABLE.has(error.code)) {
            if (error.code === "rate_limited") {
              say(reason(error));
              setTimeout(flush, (error.retryAfter || 5) * 1000);
            }
            return;
          }
          dropFromOutbox(item.client_msg_id);
          setState(item.client_msg_id, "failed", reason(error));
          say(reason(error));
        }
      }
    };
    try {
      // One tab at a time sends the shared outbox (it re-reads it under the lock).
      if (navigator.locks) await navigator.locks.request(storeKey("outbox-lock"), work);
      else await work();
    } finally {
      flushing = false;
    }
  }

  function send(text) {
    const body = String(text ?? "").trim();
    if (!body) return Promise.reject(new Error(t("empty")));
    if (body.length > MAX_BODY) {
      say(t("tooLong"));
      return Promise.reject(new Error(t("tooLong")));
    }
    say("");
    const item = { client_msg_id: uuid(), body, at: Date.now() };
    save("outbox", [...outbox(), item]);
    showPending(item);
    scrollDown();
    stopTyping();
    flush();
    return Promise.resolve({ client_msg_id: item.client_msg_id });
  }

  let typingSent = false, typingTimer = null;
  function typing() {
    const id = newestConversation();
    if (!id || !client) return;
    if (!typingSent) typingSent = client.notify("typing", { conversation_id: id, typing: true });
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, 3000);
  }
  function stopTyping() {
    clearTimeout(typingTimer);
    const id = newestConversation();
    if (typingSent && id && client) client.notify("typing", { conversation_id: id, typing: false });
    typingSent = false;
  }

  // ---- DOM snapshots (docs/screenshots.md): only projects that turned them on ever ask ------
  async function snapshot(request) {
    if (!request || !request.snapshot_id) return;
    let body;
    try {
      const chunk = await import(ctx.snapshot);
      body = chunk.snapshot(document, request.max_bytes);
      chunk.notice(root, t("snapshot"), isOpen ? status : null);
    } catch {
      body = { error: "snapshot_failed" };
    }
    // Every tab of the visitor is asked; the first answer counts, the others get 404.
    rest("POST", "/snapshots/" + encodeURIComponent(request.snapshot_id), body).catch(() => {});
  }

  // ---- navigation and device info ------------------------------------------------------------
  let lastReported = "";
  function reportNavigation(force) {
    if (!client) return;
    const url = location.href.slice(0, 2048), title = baseTitle().slice(0, 512);
    const current = url + "\n" + title;
    if (!force && current === lastReported) return;
    if (client.notify("navigate", { url, title })) lastReported = current;
  }
  const soon = () => setTimeout(() => reportNavigation(false), 0);
  if (!ctx.preview) {
    for (const name of ["pushState", "replaceState"]) {
      const original = history[name];
      history[name] = function (...args) {
        const result = original.apply(this, args);
        soon();
        return result;
      };
    }
    addEventListener("popstate", soon);
    addEventListener("hashchange", soon);
    new MutationObserver(soon).observe(document.head || document.documentElement, { subtree: true, childList: true, characterData: true });
  }

  function sendInfo() {
    const flag = storeKey("info");
    try { if (sessionStorage.getItem(flag)) return; } catch { /* no session storage */ }
    const info = {
      user_agent: navigator.userAgent.slice(0, 512),
      language: (navigator.language || "").slice(0, 35),
      timezone: (Intl.DateTimeFormat().resolvedOptions().timeZone || "").slice(0, 64),
      screen: `${screen.width}x${screen.height}`,
    };
    // Servers without visitor:info answer unknown_event: nothing is lost, the chat goes on.
    client.emit("visitor:info", info).catch(() => {}).finally(() => {
      try { sessionStorage.setItem(flag, "1"); } catch { /* no session storage */ }
    });
  }

  // ---- panel open / close --------------------------------------------------------------------
  function open() {
    unlockAudio();
    if (isOpen) return;
    isOpen = true;
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", t("close"));
    scrollDown();
    markRead();
    countUnread();
    (composer.hidden ? panel.querySelector("form:not([hidden]) input") : input)?.focus();
    ctx.emit("open", {});
  }
  function close() {
    if (!isOpen) return;
    isOpen = false;
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-label", t("open"));
    stopTyping();
    countUnread();
    launcher.focus();
    ctx.emit("close", {});
  }

  // ---- events from the visitor ---------------------------------------------------------------
  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    if (input.value.trim()) send(input.value).then(() => { input.value = ""; }, () => {});
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  input.addEventListener("input", typing);
  input.addEventListener("blur", stopTyping);
  $(".close").addEventListener("click", close);
  $(".mute").addEventListener("click", () => { save("muted", !muted()); renderMute(); });
  panel.addEventListener("keydown", (event) => { if (event.key === "Escape") close(); });
  prechat.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(prechat);
    const body = {};
    for (const field of visit.widget.prechat_fields) if (form.get(field)) body[field] = String(form.get(field)).trim();
    try {
      profile = await rest("PATCH", "/visitor", body);
      say("");
      renderAvailability();
      input.focus();
    } catch (error) {
      say(error.code === "invalid_payload" || /email/i.test(error.message) ? t("badEmail") : error.message);
    }
  });
  offlineForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(offlineForm);
    const email = String(form.get("email")).trim();
    try {
      await rest("POST", "/contact", { email, message: String(form.get("message") || ""), client_msg_id: uuid() });
      contactSent = true;
      profile = { ...profile, email };
      renderAvailability();
      say("");
      status.textContent = t("thanks", { email });
      status.hidden = false;
    } catch (error) {
      say(error.code === "invalid_payload" ? t("badEmail") : error.message);
    }
  });
  document.addEventListener("visibilitychange", markRead);
  addEventListener("storage", (event) => {
    if (event.key === storeKey("outbox")) for (const item of outbox()) showPending(item);
    if (event.key === storeKey("read")) { lastRead = load("read", {}); countUnread(); }
  });
  const availabilityTimer = setInterval(() => {
    if (isOpen && client && client.state === "connected") {
      rest("GET", "/availability").then((a) => { agentsOnline = a.agents_online; renderAvailability(); }, () => {});
    }
  }, 30000);

  // ---- start ---------------------------------------------------------------------------------
  if (ctx.preview) {
    // The console's live preview: a new visitor's open panel as the form describes it, drawn by
    // this very code; inert (no focus taken from the form), no request, no socket, no storage.
    const update = (widget) => {
      visit = { ...visit, widget };
      agentsOnline = Boolean(widget.online);
      applySettings();
    };
    element.inert = true;
    isOpen = true;
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    update(visit.widget);
    const nothing = async () => {};
    return { preview: update, stop: nothing, open: nothing, close: nothing, toggle: nothing, send: nothing,
      identify: nothing, reset: nothing, setAttributes: nothing };
  }
  applySettings();
  renderMute();
  for (const item of outbox()) showPending(item);
  loadAgents();
  ctx.fresh.then((answer) => {
    const switched = answer.visitor_uid !== visit.visitor_uid;
    visit = answer;
    agentsOnline = Boolean(answer.agents_online);
    profile = answer.visitor || {};
    applySettings();
    scheduleRefresh();
    if (switched) switchVisitor();
  }, () => scheduleRefresh());
  loadHistory().catch(() => {}).finally(connect);

  return {
    /** Refused (the loader calls it): no socket, no timers, nothing more sent. */
    stop() {
      stopped = true;
      clearTimeout(refreshTimer);
      clearInterval(availabilityTimer);
      if (client) client.close();
    },
    open,
    close,
    toggle: () => (isOpen ? close() : open()),
    send,
    async identify(identity) {
      try {
        await refresh(identity);
      } catch (error) {
        ctx.say(`identify was refused: ${error.message}${error.code ? " (" + error.code + ")" : ""}`);
        throw error;
      }
    },
    async reset() {
      for (const name of ["", ":outbox", ":read"]) {
        try { localStorage.removeItem("parley:" + key + name); } catch { /* private mode */ }
      }
      await refresh();
    },
    async setAttributes(attributes) {
      return rest("PATCH", "/visitor", { attributes });
    },
  };
}
