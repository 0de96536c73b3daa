/**
 * inbox.js: the live inbox's page script (templates/console/inbox.html, console/inbox.py).
 *
 * It builds on the one protocol client (parley-client.js) and does only what htmx cannot:
 * - socket events become DOM events that the server-rendered blocks listen to
 *   (hx-trigger="inbox:list from:body" and friends): the list, the thread header and the
 *   visitor panel refresh themselves from the server;
 * - the open thread's messages are drawn here from the events themselves (message.created
 *   carries all a message shows), from the page's JSON and from older pages: one renderer,
 *   ordered by seq, each seq once (the client dedupes; the DOM check below makes every insert
 *   idempotent too, so a sync after a drop can never show a message twice);
 * - the reply box (Enter / Shift+Enter, note toggle, "/" canned picker, drafts per
 *   conversation), typing, read marks, keyboard shortcuts, title and notifications, presence.
 * Message bodies are text: only http(s) links become links, with rel="noopener noreferrer nofollow".
 */
import { ParleyClient } from "/static/js/parley-client.js";

const config = JSON.parse(document.getElementById("inbox-config").textContent);
const body = document.body;
const DRAFTS_KEY = "parley:drafts:" + config.project_id;
const TYPING_TTL_MS = 6000;
const MAX_THREAD_MESSAGES = 600; // older ones leave the DOM (scroll up loads them again)
const baseTitle = document.title;

const client = new ParleyClient({
  url: config.realtime_url,
  namespace: "/agent",
  target: body,
  auth: async () => {
    const response = await fetch(config.inbox_path + "/token", { credentials: "same-origin" });
    if (!response.ok) throw Object.assign(new Error("token " + response.status), { code: "auth_failed" });
    const { token, projects } = await response.json();
    return { token, projects };
  },
});

// ---------------------------------------------------------------- the thread (one at a time)
let thread = null; // {id, list, visitorUid, visitorReadSeq, oldest, hasMore, loading}

function memberName(userId) {
  return (userId && config.members[String(userId)]) || "Agent";
}

function linkified(text) {
  const fragment = document.createDocumentFragment();
  const pattern = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/gi;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > last) fragment.append(text.slice(last, match.index));
    const link = document.createElement("a");
    link.href = match[0];
    link.textContent = match[0];
    link.rel = "noopener noreferrer nofollow";
    link.target = "_blank";
    fragment.append(link);
    last = match.index + match[0].length;
  }
  if (last < text.length) fragment.append(text.slice(last));
  return fragment;
}

function timeOf(value) {
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** One message element; `message` is a MessageView (sync/history) or message.created data. */
function messageElement(message, { pending = false } = {}) {
  const item = document.createElement("li");
  const kind = message.sender_kind === "system" ? "system" : message.private ? "note" : message.sender_kind;
  item.className = "message message--" + kind;
  if (!pending) item.dataset.seq = String(message.seq);
  item.dataset.clientMsgId = message.client_msg_id;
  item.dataset.sender = kind + ":" + (message.sender_user_id || "");
  const meta = document.createElement("div");
  meta.className = "message__meta";
  const who = document.createElement("span");
  who.className = "message__who";
  who.textContent = kind === "visitor" ? "Visitor" : kind === "system" ? "" : memberName(message.sender_user_id);
  if (kind === "note") {
    const label = document.createElement("span");
    label.className = "tag tag--note";
    label.textContent = "Private note";
    meta.append(label);
  }
  const time = document.createElement("time");
  time.textContent = timeOf(message.created_at || Date.now() / 1000);
  meta.append(who, time);
  const text = document.createElement("div");
  text.className = "message__body";
  text.append(linkified(message.body));
  item.append(meta, text);
  if (message.sender_kind === "agent" && !message.private) {
    const mark = document.createElement("span");
    mark.className = "message__mark";
    item.append(mark);
    setMark(item, pending ? "sending" : "delivered");
  }
  return item;
}

function setMark(item, state) {
  const mark = item.querySelector(".message__mark");
  if (!mark) return;
  item.dataset.state = state;
  mark.textContent = { sending: "Sending…", sent: "Sent", delivered: "Delivered", read: "Read", failed: "Not sent: retry" }[state];
}

/** Group runs of one sender: only the first of a run shows who and when. */
function regroup(item) {
  for (const node of [item, item.nextElementSibling]) {
    if (!node) continue;
    const before = node.previousElementSibling;
    node.classList.toggle("message--continued", !!before && before.dataset.sender === node.dataset.sender && !node.classList.contains("message--system"));
  }
}

function nearBottom(scroller) {
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
}

/** Insert a stored message at its seq (idempotent); reconcile a pending one by client_msg_id. */
function placeMessage(message) {
  if (!thread || message.conversation_id !== thread.id) return false;
  const list = thread.list;
  if (list.querySelector(`[data-seq="${message.seq}"]`)) return false;
  const scroller = document.getElementById("thread-scroll");
  const stick = nearBottom(scroller);
  const pending = list.querySelector(`[data-client-msg-id="${CSS.escape(message.client_msg_id)}"]:not([data-seq])`);
  const item = messageElement(message);
  if (pending) pending.remove();
  let after = null;
  for (let node = list.lastElementChild; node; node = node.previousElementSibling) {
    if (node.dataset.seq && Number(node.dataset.seq) < message.seq) { after = node; break; }
  }
  if (after) after.after(item);
  else if (thread.oldest !== null && message.seq < thread.oldest) list.prepend(item);
  else if (list.firstElementChild && list.firstElementChild.dataset.seq && Number(list.firstElementChild.dataset.seq) > message.seq) list.prepend(item);
  else {
    // After the last stored one, before the pending ones.
    const firstPending = list.querySelector(".message:not([data-seq])");
    if (firstPending) firstPending.before(item); else list.append(item);
  }
  thread.oldest = thread.oldest === null ? message.seq : Math.min(thread.oldest, message.seq);
  regroup(item);
  applyReadMarks();
  if (stick) scroller.scrollTop = scroller.scrollHeight;
  trimThread();
  return true;
}

function trimThread() {
  const list = thread.list;
  let extra = list.children.length - MAX_THREAD_MESSAGES;
  while (extra-- > 0 && list.firstElementChild) list.firstElementChild.remove();
  const first = list.querySelector("[data-seq]");
  if (first && Number(first.dataset.seq) > thread.oldest) { thread.oldest = Number(first.dataset.seq); thread.hasMore = true; }
}

function applyReadMarks() {
  if (!thread) return;
  for (const item of thread.list.querySelectorAll(".message--agent[data-seq]")) {
    if (Number(item.dataset.seq) <= thread.visitorReadSeq) setMark(item, "read");
    else if (item.dataset.state !== "read") setMark(item, "delivered");
  }
}

function highestSeq() {
  const items = thread ? thread.list.querySelectorAll("[data-seq]") : [];
  return items.length ? Number(items[items.length - 1].dataset.seq) : 0;
}

let readTimer = null;
function markReadSoon() {
  if (!thread || document.visibilityState !== "visible") return;
  clearTimeout(readTimer);
  readTimer = setTimeout(() => {
    const seq = highestSeq();
    if (!thread || seq <= (thread.readSeq || 0)) return;
    thread.readSeq = seq;
    client.emit("read", { conversation_id: thread.id, seq }).catch(() => { thread && (thread.readSeq = 0); });
  }, 300);
}

async function catchUpThread() {
  // The page was rendered at some moment; what came between then and now arrives here, and
  // after every reconnect (the client's own sync covers the tracked floor, this covers the DOM).
  if (!thread || client.state !== "connected") return;
  const id = thread.id;
  let from = highestSeq();
  for (let round = 0; round < 20; round++) {
    let answer;
    try { answer = await client.emit("sync", { conversations: { [id]: from } }); } catch { return; }
    const page = (answer.conversations || {})[id];
    if (!page || !thread || thread.id !== id) return;
    for (const message of page.messages) placeMessage(message);
    if (!page.has_more || !page.messages.length) break;
    from = page.messages[page.messages.length - 1].seq;
  }
  markReadSoon();
}

async function loadOlder() {
  if (!thread || thread.loading || !thread.hasMore || thread.oldest === null) return;
  thread.loading = true;
  const id = thread.id;
  try {
    const response = await fetch(`${config.inbox_path}/${id}/messages?before_seq=${thread.oldest}`, { credentials: "same-origin" });
    if (!response.ok || !thread || thread.id !== id) return;
    const page = await response.json();
    const scroller = document.getElementById("thread-scroll");
    const fromBottom = scroller.scrollHeight - scroller.scrollTop;
    for (const message of page.items.slice().reverse()) {
      if (thread.list.querySelector(`[data-seq="${message.seq}"]`)) continue;
      const item = messageElement(message);
      thread.list.prepend(item);
      regroup(item);
      thread.oldest = Math.min(thread.oldest, message.seq);
    }
    thread.hasMore = page.has_more;
    applyReadMarks();
    scroller.scrollTop = scroller.scrollHeight - fromBottom; // keep what the agent was reading in place
  } finally {
    if (thread) thread.loading = false;
  }
}

function openThread() {
  const section = document.querySelector(".thread");
  if (!section) { thread = null; highlightRow(); return; }
  const list = document.getElementById("messages");
  const data = JSON.parse(list.dataset.history);
  delete list.dataset.history;
  thread = {
    id: Number(section.dataset.conversationId),
    list,
    visitorUid: section.dataset.visitorUid,
    visitorReadSeq: Number(section.dataset.visitorReadSeq || 0),
    oldest: null,
    hasMore: data.has_more,
    loading: false,
    readSeq: 0,
  };
  for (const message of data.items) placeMessage(message);
  client.track(thread.id, highestSeq());
  const scroller = document.getElementById("thread-scroll");
  scroller.scrollTop = scroller.scrollHeight;
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting)) loadOlder();
  }, { root: scroller, rootMargin: "200px 0px 0px 0px" });
  observer.observe(document.getElementById("thread-older"));
  scroller.addEventListener("scroll", () => { if (nearBottom(scroller)) markReadSoon(); }, { passive: true });
  setupComposer(thread.id);
  highlightRow();
  catchUpThread();
  markReadSoon();
  localTimes(document.getElementById("inbox-work"));
  setupSnoozeForm();
}

function highlightRow() {
  for (const row of document.querySelectorAll(".conversation-row")) {
    const current = thread && Number(row.dataset.conversationId) === thread.id;
    row.classList.toggle("conversation-row--current", current);
    const link = row.querySelector("a");
    if (current) link.setAttribute("aria-current", "true"); else link.removeAttribute("aria-current");
  }
}

// ---------------------------------------------------------------- the composer
function drafts() {
  try { return JSON.parse(localStorage.getItem(DRAFTS_KEY) || "{}"); } catch { return {}; }
}
function saveDraft(id, text) {
  const all = drafts();
  if (text) all[id] = text; else delete all[id];
  localStorage.setItem(DRAFTS_KEY, JSON.stringify(all));
}

let typingSent = 0, typingStopTimer = null;
function typing(id, active) {
  const now = Date.now();
  const isNote = document.querySelector('#composer [name="mode"]:checked').value === "note";
  if (active && now - typingSent < 2000) { clearTimeout(typingStopTimer); typingStopTimer = setTimeout(() => typing(id, false), 3000); return; }
  typingSent = active ? now : 0;
  client.notify("typing", { conversation_id: id, typing: active, private: isNote });
  clearTimeout(typingStopTimer);
  if (active) typingStopTimer = setTimeout(() => typing(id, false), 3000);
}

async function send(id, text, isNote) {
  const clientMsgId = crypto.randomUUID();
  const pending = messageElement({
    conversation_id: id, sender_kind: "agent", sender_user_id: config.user_id, body: text,
    private: isNote, client_msg_id: clientMsgId, created_at: Date.now() / 1000,
  }, { pending: true });
  thread.list.append(pending);
  regroup(pending);
  setMark(pending, "sending");
  const scroller = document.getElementById("thread-scroll");
  scroller.scrollTop = scroller.scrollHeight;
  const attempt = async () => {
    try {
      await client.emit("message:send", { conversation_id: id, body: text, private: isNote, client_msg_id: clientMsgId });
      if (!pending.dataset.seq && pending.isConnected) setMark(pending, "sent");
    } catch (error) {
      if (!pending.isConnected) return;
      setMark(pending, "failed");
      pending.querySelector(".message__mark").title = error.message;
    }
  };
  pending.addEventListener("click", () => { if (pending.dataset.state === "failed") { setMark(pending, "sending"); attempt(); } });
  await attempt();
}

let canned = null;
async function cannedReplies() {
  if (!canned) {
    const response = await fetch(config.inbox_path + "/canned", { credentials: "same-origin" });
    canned = response.ok ? await response.json() : [];
  }
  return canned;
}

function setupComposer(id) {
  const form = document.getElementById("composer");
  const text = document.getElementById("composer-text");
  const picker = document.getElementById("canned");
  const search = document.getElementById("canned-search");
  const options = document.getElementById("canned-list");
  text.value = drafts()[id] || "";
  let selected = 0;

  const isNote = () => form.querySelector('[name="mode"]:checked').value === "note";
  const syncMode = () => { form.classList.toggle("composer--note", isNote()); text.placeholder = isNote() ? "Private note: only agents see it" : "Reply… Enter sends, Shift+Enter adds a line, / inserts a canned reply"; };
  form.addEventListener("change", syncMode);
  syncMode();

  const closePicker = () => { picker.hidden = true; text.focus(); };
  const renderPicker = async () => {
    const query = search.value.trim().toLowerCase();
    const matches = (await cannedReplies()).filter((reply) =>
      !query || reply.shortcut.toLowerCase().includes(query) || reply.title.toLowerCase().includes(query) || reply.body.toLowerCase().includes(query));
    selected = Math.min(selected, Math.max(0, matches.length - 1));
    options.replaceChildren(...matches.map((reply, index) => {
      const option = document.createElement("li");
      option.setAttribute("role", "option");
      option.id = "canned-option-" + index;
      option.className = "canned__option";
      option.setAttribute("aria-selected", String(index === selected));
      const shortcut = document.createElement("strong");
      shortcut.textContent = "/" + reply.shortcut;
      const preview = document.createElement("span");
      preview.className = "muted";
      preview.textContent = " " + (reply.title || reply.body).slice(0, 80);
      option.append(shortcut, preview);
      option.addEventListener("mousedown", (event) => { event.preventDefault(); choose(reply); });
      return option;
    }));
    if (!matches.length) {
      const empty = document.createElement("li");
      empty.className = "muted canned__empty";
      empty.textContent = "No canned reply matches.";
      options.append(empty);
    }
    search.setAttribute("aria-activedescendant", matches.length ? "canned-option-" + selected : "");
    picker.matches = matches;
  };
  const choose = (reply) => {
    const at = text.selectionStart;
    // Replace the "/" that opened the picker with the reply's body.
    const before = text.value.slice(0, at).replace(/\/$/, "");
    text.value = before + reply.body + text.value.slice(at);
    saveDraft(id, text.value);
    closePicker();
    text.selectionStart = text.selectionEnd = before.length + reply.body.length;
  };

  text.addEventListener("input", () => {
    saveDraft(id, text.value);
    if (text.value.trim()) typing(id, true);
    const at = text.selectionStart;
    if (text.value[at - 1] === "/" && (at === 1 || /\s/.test(text.value[at - 2]))) {
      picker.hidden = false;
      search.value = "";
      selected = 0;
      renderPicker();
      search.focus();
    }
  });
  search.addEventListener("input", () => { selected = 0; renderPicker(); });
  search.addEventListener("keydown", (event) => {
    const matches = picker.matches || [];
    if (event.key === "ArrowDown") { selected = Math.min(selected + 1, matches.length - 1); renderPicker(); event.preventDefault(); }
    else if (event.key === "ArrowUp") { selected = Math.max(selected - 1, 0); renderPicker(); event.preventDefault(); }
    else if (event.key === "Enter") { event.preventDefault(); if (matches[selected]) choose(matches[selected]); }
    else if (event.key === "Escape") { event.preventDefault(); closePicker(); }
  });
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); form.requestSubmit(); }
    else if (event.key === "Escape") text.blur();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = text.value.trim();
    if (!value) return;
    text.value = "";
    saveDraft(id, "");
    typing(id, false);
    send(id, value, isNote());
  });
}

function setupSnoozeForm() {
  const offset = document.querySelector("[data-tz-offset]");
  if (offset) offset.value = String(new Date().getTimezoneOffset());
}

// ---------------------------------------------------------------- typing indicator
const typers = new Map(); // "kind:id" -> {name, timer}
function showTyping(envelope, active) {
  if (!thread || envelope.conversation_id !== thread.id) return;
  const sender = envelope.data.sender || {};
  if (sender.kind === "agent" && sender.user_id === config.user_id) return;
  const key = sender.kind + ":" + (sender.user_id || sender.visitor_uid);
  clearTimeout(typers.get(key)?.timer);
  if (active) {
    const name = sender.kind === "visitor" ? "The visitor" : memberName(sender.user_id);
    typers.set(key, { name, timer: setTimeout(() => { typers.delete(key); renderTyping(); }, TYPING_TTL_MS) });
  } else typers.delete(key);
  renderTyping();
}
function renderTyping() {
  const line = document.getElementById("typing");
  if (!line) return;
  const names = [...typers.values()].map((typer) => typer.name);
  line.textContent = names.length ? names.join(", ") + (names.length > 1 ? " are typing…" : " is typing…") : "";
}

// ---------------------------------------------------------------- list, header, panel refreshes
function refresh(what) { body.dispatchEvent(new CustomEvent("inbox:" + what, { bubbles: true })); }

function trackListed(root = document) {
  for (const row of root.querySelectorAll(".conversation-row")) client.track(Number(row.dataset.conversationId), Number(row.dataset.lastSeq));
  updateTitle();
}

let lastUnread = 0;
function updateTitle() {
  const list = document.getElementById("conversation-list");
  const unread = list ? Number(list.dataset.unreadTotal || 0) : 0;
  document.title = unread ? `(${unread}) ${baseTitle}` : baseTitle;
  lastUnread = unread;
}

client.on("message.created", (envelope) => {
  const message = envelope.data;
  const isCurrent = thread && message.conversation_id === thread.id;
  if (isCurrent) {
    placeMessage(message);
    if (message.sender_kind === "visitor") { typers.clear(); renderTyping(); }
    markReadSoon();
  }
  if (envelope.source === "live") {
    refresh("list");
    if (message.sender_kind === "visitor") notify(message, isCurrent);
  }
});
for (const name of ["conversation.created", "conversation.status_changed", "conversation.assigned", "conversation.updated"]) {
  client.on(name, (envelope) => {
    refresh("list");
    if (thread && (envelope.conversation_id || envelope.data.id) === thread.id) refresh("header");
    if (name === "conversation.created") client.track(envelope.conversation_id || envelope.data.id, 0);
  });
}
client.on("conversation.read", (envelope) => {
  const reader = envelope.data.reader || {};
  if (reader.kind === "agent" && reader.user_id === config.user_id) refresh("list"); // another tab of mine read it
  if (thread && envelope.data.id === thread.id && reader.kind === "visitor") {
    thread.visitorReadSeq = Math.max(thread.visitorReadSeq, envelope.data.seq);
    applyReadMarks();
  }
});
client.on("typing.started", (envelope) => showTyping(envelope, true));
client.on("typing.stopped", (envelope) => showTyping(envelope, false));
client.on("visitor.navigated", (envelope) => {
  refresh("list");
  if (thread && envelope.data.visitor_uid === thread.visitorUid) refresh("panel");
});
// A screenshot this agent asked for is ready (or failed): the panel's slot asks for its state.
for (const name of ["screenshot.ready", "screenshot.failed"]) client.on(name, () => refresh("screenshot"));
client.on("visitor.updated", (envelope) => { if (thread && envelope.data.visitor_uid === thread.visitorUid) refresh("panel"); });
// One event per project carries every change since the last (a storm is one event, not one per
// visitor): set each listed visitor's dots to its latest status, refresh the open panel once.
client.on("presence.changed", (envelope) => {
  const latest = new Map();
  for (const change of envelope.data.changes || []) {
    if (change.kind === "visitor") latest.set(change.visitor_uid, change.status);
  }
  for (const [uid, status] of latest) {
    for (const dot of document.querySelectorAll(`[data-visitor-presence="${CSS.escape(uid)}"]`)) {
      dot.className = "presence-dot presence-dot--" + status;
      dot.title = status;
    }
  }
  if (thread && latest.has(thread.visitorUid)) refresh("panel");
});
let revoked = null; // the server's access:revoked, once it ended this inbox's session
client.on("state", ({ state }) => {
  const badge = document.getElementById("connection");
  badge.dataset.state = revoked && state === "closed" ? "revoked" : state;
  badge.textContent = revoked && state === "closed" ? "No access"
    : { connecting: "Connecting…", connected: "Live", disconnected: "Reconnecting…", closed: "Offline" }[state] || state;
  body.dataset.socket = state;
});
// Access lost (removed from the project, deactivated, key revoked): say why instead of "Offline".
client.on("access:revoked", (event) => {
  revoked = event;
  if (document.getElementById("access-revoked")) return;
  const notice = document.createElement("p");
  notice.id = "access-revoked";
  notice.className = "flash flash--error inbox__revoked";
  notice.setAttribute("role", "alert");
  const why = event.message ? event.message[0].toUpperCase() + event.message.slice(1) + "." : "Your access to this project has ended.";
  notice.textContent = why + " Reload the page to see what you can still open.";
  document.getElementById("inbox").before(notice);
});
client.on("connect", ({ recovered }) => {
  if (recovered) { refresh("list"); refresh("header"); }
  catchUpThread();
  const choice = localStorage.getItem("parley:presence");
  if (choice) client.notify("presence", { status: choice });
});
client.on("synced", () => { body.dataset.synced = String(Date.now()); });

// ---------------------------------------------------------------- notifications and sound
const optin = document.getElementById("notify-optin");
if ("Notification" in window && Notification.permission !== "granted" && localStorage.getItem("parley:notify") !== "off") optin.hidden = false;
optin.addEventListener("click", async () => {
  const permission = await Notification.requestPermission();
  localStorage.setItem("parley:notify", permission === "granted" ? "on" : "off");
  optin.hidden = true;
});
function beep() {
  try {
    const audio = new AudioContext();
    const tone = audio.createOscillator(), gain = audio.createGain();
    tone.frequency.value = 880;
    gain.gain.setValueAtTime(0.08, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.25);
    tone.connect(gain).connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.25);
  } catch { /* no audio: the notification is enough */ }
}
function notify(message, isCurrent) {
  if (document.visibilityState === "visible" || localStorage.getItem("parley:notify") !== "on") return;
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const row = document.querySelector(`.conversation-row[data-conversation-id="${message.conversation_id}"]`);
  const mine = isCurrent || (row && row.closest("#conversation-list"));
  if (!mine) return;
  const note = new Notification("New message", { body: message.body.slice(0, 120), tag: "parley-" + message.conversation_id });
  note.onclick = () => { window.focus(); location.href = config.inbox_path + "/" + message.conversation_id; };
  beep();
}

// ---------------------------------------------------------------- presence of the agent
const presenceChoice = document.querySelector("[data-presence-choice]");
presenceChoice.value = localStorage.getItem("parley:presence") || "online";
presenceChoice.addEventListener("change", () => {
  localStorage.setItem("parley:presence", presenceChoice.value);
  client.emit("presence", { status: presenceChoice.value }).catch(() => {});
});
addEventListener("storage", (event) => {
  if (event.key === "parley:presence" && event.newValue) presenceChoice.value = event.newValue;
  if (event.key === DRAFTS_KEY && thread && document.activeElement?.id !== "composer-text") {
    const text = document.getElementById("composer-text");
    if (text) text.value = drafts()[thread.id] || "";
  }
});
let lastActivity = 0;
for (const name of ["keydown", "pointerdown", "wheel"]) {
  addEventListener(name, () => {
    const now = Date.now();
    if (now - lastActivity < config.idle_activity_ms) return;
    lastActivity = now;
    client.notify("activity", {});
  }, { passive: true });
}

// ---------------------------------------------------------------- keyboard shortcuts
const overlay = document.getElementById("shortcuts");
let overlayReturn = null;
function toggleOverlay(show) {
  overlay.hidden = !show;
  if (show) { overlayReturn = document.activeElement; overlay.querySelector("button").focus(); }
  else if (overlayReturn) overlayReturn.focus();
}
overlay.addEventListener("click", (event) => { if (event.target === overlay || event.target.closest("[data-close-shortcuts]")) toggleOverlay(false); });
function moveRow(step) {
  const rows = [...document.querySelectorAll(".conversation-row a")];
  if (!rows.length) return;
  const current = rows.findIndex((link) => link.hasAttribute("aria-current"));
  const next = rows[Math.max(0, Math.min(rows.length - 1, current + step))];
  next.click();
  next.focus();
}
addEventListener("keydown", (event) => {
  if (!overlay.hidden) { if (event.key === "Escape" || event.key === "?") { event.preventDefault(); toggleOverlay(false); } return; }
  const target = event.target;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (target.closest("input, textarea, select, [contenteditable]")) return;
  const click = (selector) => { const button = document.querySelector(selector); if (button) { event.preventDefault(); button.click(); } };
  switch (event.key) {
    case "?": event.preventDefault(); toggleOverlay(true); break;
    case "j": event.preventDefault(); moveRow(1); break;
    case "k": event.preventDefault(); moveRow(-1); break;
    case "r": { const text = document.getElementById("composer-text"); if (text) { event.preventDefault(); document.querySelector('#composer [value="reply"]').click(); text.focus(); } break; }
    case "n": { const text = document.getElementById("composer-text"); if (text) { event.preventDefault(); document.querySelector('#composer [value="note"]').click(); text.focus(); } break; }
    case "a": click('[data-action="assign-me"]'); break;
    case "e": click('[data-action="resolve"]'); break;
    case "/": { const search = document.getElementById("inbox-search"); if (search) { event.preventDefault(); search.focus(); } break; }
  }
});

// ---------------------------------------------------------------- times in the agent's zone
function localTimes(root) {
  for (const node of root.querySelectorAll("[data-unix-time]")) node.textContent = new Date(Number(node.dataset.unixTime) * 1000).toLocaleString([], { dateStyle: "short", timeStyle: "short" });
  for (const node of root.querySelectorAll("[data-local-time]")) node.textContent = new Date(node.getAttribute("datetime")).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  for (const node of root.querySelectorAll("[data-visitor-clock]")) {
    try { node.textContent = new Date().toLocaleTimeString([], { timeZone: node.dataset.visitorClock, hour: "2-digit", minute: "2-digit" }) + " there"; } catch { node.textContent = ""; }
  }
}

// ---------------------------------------------------------------- wiring
document.addEventListener("htmx:afterSwap", (event) => {
  const target = event.detail.target;
  if (target.id === "inbox-work") { typers.clear(); openThread(); }
  else if (target.id === "conversation-list" || target.closest?.("#inbox") && document.getElementById("conversation-list")?.contains(target)) { trackListed(); highlightRow(); }
  if (event.detail.elt?.id === "visitor-panel" || target.id === "visitor-panel") localTimes(document.getElementById("visitor-panel") || document);
  if (document.getElementById("thread-header")?.contains(event.detail.elt) || event.detail.elt?.id === "thread-header") setupSnoozeForm();
});
document.addEventListener("htmx:load", (event) => {
  const elt = event.detail.elt;
  if (elt.id === "conversation-list") { trackListed(); highlightRow(); }
  if (elt.id === "visitor-panel") localTimes(elt);
  if (elt.id === "thread-header") setupSnoozeForm();
});
addEventListener("popstate", () => location.reload());
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState !== "visible") return;
  // A tab that slept may have missed events while its socket looked alive: catch up now.
  client.sync();
  catchUpThread();
  refresh("list");
  markReadSoon();
});

trackListed();
openThread();
performance.mark("inbox:ready"); // bench/inbox.py: the list and the open thread are usable
client.connect();
window.parleyInbox = { client, get thread() { return thread; } }; // for tests and the benchmark
