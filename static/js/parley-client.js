/**
 * parley-client.js: the one browser client of Parley's realtime protocol (docs/protocol.md).
 * Socket.IO v5 over Engine.IO v4, websocket transport only, one namespace per client.
 * Plain ES module, no dependencies, no build step. It knows nothing of pages: the inbox
 * (/agent) and the widget (/visitor) both build on it.
 *
 *   import { ParleyClient } from "/static/js/parley-client.js";
 *   const client = new ParleyClient({
 *     url: "https://chat.example.com",        // the realtime gateway (http(s):// or ws(s)://)
 *     namespace: "/agent",                    // or "/visitor"
 *     auth: async (lastError) => ({ token }),  // called before every (re)connect; lastError is
 *                                             // the previous connect_error code or null
 *     target: document.body,                  // optional: events also dispatched there as
 *   });                                       // CustomEvent "parley:<name>" (bubbles), for htmx
 *   client.on("message.created", (envelope) => render(envelope.data));   // returns an unsubscribe
 *   client.track(12, 40);                      // conversation 12: everything up to seq 40 is held
 *   client.connect();
 *   const ack = await client.emit("message:send", { body: "Hi", client_msg_id: crypto.randomUUID() });
 *   client.notify("typing", { conversation_id: 12, typing: true });   // no ack wanted
 *   client.close();
 *
 * Events (client.on(name, fn) gets the detail; client is also an EventTarget of CustomEvents):
 *   state          {state}: "connecting" | "connected" | "disconnected" | "closed"
 *   connect        {recovered}: the namespace is joined (recovered: not the first time)
 *   synced         {conversations}: the catch-up after a connect / server:resync / gap is done
 *   disconnect     {reason}
 *   access:revoked {code, message, projects}: access lost; the server then ends the session
 *                  and the client stays "closed" (docs/protocol.md, "When access changes")
 *   connect_error  {code, message, fatal}: refused; fatal ones (origin, wrong kind...) stop retrying
 *   message.created  the envelope {type, conversation_id, seq, data, source: "live" | "sync"},
 *                  exactly once per (conversation, seq), whether it came live or from sync
 *   presence.changed  the envelope; data.changes lists every change since the last one, in order
 *                  ({kind, status, visitor_uid | user_id}): the server sends at most one per
 *                  project per 250 ms. client.presence maps "visitor:<uid>" / "agent:<user id>"
 *                  to the latest status seen (each entry is applied before the event fires).
 *   <any other server event>  its envelope as sent (typing.started, conversation.read, ...)
 *
 * Catch-up rule (docs/protocol.md, "Client rule"): per conversation the client keeps `floor`,
 * the highest seq with nothing missing at or below it, and the seqs held above it. A message
 * is a duplicate when its seq is <= floor or already held. After every connect, on
 * server:resync and whenever a live message leaves a gap, it syncs each conversation from its
 * floor (never from the highest seq seen), pages through has_more, and a complete sync answer
 * raises the floor to the highest seq returned: the seqs it skipped are not visible to this
 * client (a visitor never gets private notes). A live message of a conversation not tracked yet
 * starts tracking it with the floor just below that message (track() it first to get older ones).
 *
 * emit() resolves with the ack, or rejects with an Error carrying .code (the server's error
 * code, "timeout", "not_connected" or "disconnected"), .retryAfter and .fields when given.
 */

const OPEN = "0", CLOSE = "1", PING = "2", PONG = "3", MESSAGE = "4";
const SIO_CONNECT = "0", SIO_DISCONNECT = "1", SIO_EVENT = "2", SIO_ACK = "3", SIO_CONNECT_ERROR = "4";
const FATAL = new Set(["origin_not_allowed", "wrong_token_kind", "wrong_project", "forbidden_project",
  "invalid_auth", "invalid_namespace", "unknown_widget_key"]);
const SYNC_BATCH = 50;

export class ParleyError extends Error {
  constructor(code, message, extra = {}) {
    super(message || code);
    this.code = code;
    this.retryAfter = extra.retry_after;
    this.fields = extra.fields;
  }
}

export class ParleyClient extends EventTarget {
  constructor({ url, namespace, auth, target = null, ackTimeoutMs = 10000,
    backoffMs = 500, maxBackoffMs = 10000 }) {
    super();
    this.url = url.replace(/^http/, "ws").replace(/\/+$/, "") + "/socket.io/?EIO=4&transport=websocket";
    this.namespace = namespace;
    this.authFn = auth || (() => ({}));
    this.target = target;
    this.ackTimeoutMs = ackTimeoutMs;
    this.backoffMs = backoffMs;
    this.maxBackoffMs = maxBackoffMs;
    this.state = "disconnected";
    this.conversations = new Map(); // id -> {floor, above: Set<seq>}
    this.presence = new Map(); // "visitor:<uid>" | "agent:<user id>" -> latest status
    this.ws = null;
    this.acks = new Map();
    this.nextAckId = 1;
    this.attempt = 0;
    this.joinedOnce = false;
    this.lastError = null;
    this.wanted = false;
    this.timer = null;
    this.syncing = null;
    this.opening = false;
    this.resyncWanted = false;
    this.gapTimer = null;
    if (typeof addEventListener === "function") {
      addEventListener("online", () => { if (this.wanted && this.state !== "connected") this.reconnectNow(); });
      addEventListener("offline", () => { if (this.ws) this.ws.close(); });
    }
  }

  /** Listen to one event; fn gets the detail. Returns a function that removes the listener. */
  on(name, fn) {
    const listener = (event) => fn(event.detail);
    this.addEventListener(name, listener);
    return () => this.removeEventListener(name, listener);
  }

  fire(name, detail) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
    if (this.target) this.target.dispatchEvent(new CustomEvent("parley:" + name, { detail, bubbles: true }));
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.fire("state", { state });
  }

  connect() {
    this.wanted = true;
    if (!this.ws && !this.timer && !this.opening) this.open();
  }

  close() {
    this.wanted = false;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) this.ws.close(1000);
    this.setState("closed");
  }

  reconnectNow() {
    clearTimeout(this.timer);
    this.timer = null;
    this.attempt = 0;
    if (this.ws) this.ws.close(); else if (!this.opening) this.open();
  }

  async open() {
    this.timer = null;
    this.setState("connecting");
    this.opening = true;
    let auth;
    try {
      auth = await this.authFn(this.lastError);
    } catch (error) {
      this.opening = false;
      const code = error.code || "auth_failed", fatal = FATAL.has(code);
      this.fire("connect_error", { code, message: String(error.message || error), fatal });
      if (fatal) this.wanted = false;
      return this.retry();
    }
    this.opening = false;
    if (!this.wanted) return this.setState("closed");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    let liveness = null;
    const alive = (ms) => { clearTimeout(liveness); liveness = setTimeout(() => lost("no answer from the server"), ms); };
    let interval = 45000;
    ws.onmessage = (event) => {
      if (typeof event.data !== "string") return;
      const type = event.data[0], body = event.data.slice(1);
      if (type === OPEN) {
        const hello = JSON.parse(body);
        interval = hello.pingInterval + hello.pingTimeout;
        alive(interval);
        this.write(SIO_CONNECT + this.namespace + "," + JSON.stringify(auth));
      } else if (type === PING) {
        alive(interval);
        ws.send(PONG + body);
      } else if (type === MESSAGE) {
        this.packet(body);
      } else if (type === CLOSE) {
        ws.close();
      }
    };
    // Some WebSocket implementations report a refused connection only as "error": both end it.
    const lost = (reason) => {
      clearTimeout(liveness);
      if (this.ws !== ws) return;
      this.ws = null;
      ws.onclose = ws.onerror = ws.onmessage = null;
      try { ws.close(); } catch { /* already closing */ }
      for (const [, pending] of this.acks) pending.reject(new ParleyError("disconnected", "the connection was lost"));
      this.acks.clear();
      this.fire("disconnect", { reason });
      if (this.wanted) this.retry(); else this.setState("closed");
    };
    ws.onclose = (event) => lost(event.reason || "closed (" + event.code + ")");
    ws.onerror = () => lost("connection failed");
    alive(this.ackTimeoutMs); // no Engine.IO handshake in time: give up on this attempt
  }

  retry() {
    if (!this.wanted) return this.setState("closed");
    this.setState("disconnected");
    // Exponential backoff with jitter: half fixed, half random, so a restarted node is not
    // hit by every client at the same instant.
    const ceiling = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** this.attempt++);
    this.timer = setTimeout(() => this.open(), ceiling / 2 + Math.random() * ceiling / 2);
  }

  write(packet) {
    this.ws.send(MESSAGE + packet);
  }

  packet(text) {
    const type = text[0];
    let rest = text.slice(1), namespace = "/";
    if (rest[0] === "/") {
      const comma = rest.indexOf(",");
      namespace = comma < 0 ? rest : rest.slice(0, comma);
      rest = comma < 0 ? "" : rest.slice(comma + 1);
    }
    if (namespace !== this.namespace) return;
    const digits = /^\d*/.exec(rest)[0];
    const ackId = digits ? Number(digits) : null;
    const payload = rest.length > digits.length ? JSON.parse(rest.slice(digits.length)) : null;
    if (type === SIO_CONNECT) this.joined();
    else if (type === SIO_CONNECT_ERROR) this.refused(payload || {});
    else if (type === SIO_EVENT) this.event(payload, ackId);
    else if (type === SIO_ACK) {
      const pending = this.acks.get(ackId);
      if (!pending) return;
      this.acks.delete(ackId);
      const value = payload[0];
      if (value && value.error) pending.reject(new ParleyError(value.error.code, value.error.message, value.error));
      else pending.resolve(value);
    } else if (type === SIO_DISCONNECT) {
      // The server ended the session (access revoked, after an "access:revoked" event): like the
      // official clients after "io server disconnect", do not reconnect by ourselves.
      this.wanted = false;
      this.ws.close();
    }
  }

  joined() {
    const recovered = this.joinedOnce;
    this.joinedOnce = true;
    this.attempt = 0;
    this.lastError = null;
    this.setState("connected");
    this.fire("connect", { recovered });
    this.sync();
  }

  refused(payload) {
    const code = (payload.data && payload.data.code) || "refused";
    this.lastError = code;
    const fatal = FATAL.has(code);
    this.fire("connect_error", { code, message: payload.message || code, fatal });
    if (fatal) this.wanted = false;
    if (this.ws) this.ws.close();
  }

  event([name, envelope], ackId) {
    if (ackId !== null) this.write(SIO_ACK + this.namespace + "," + ackId + JSON.stringify(["ok"]));
    if (name === "message.created") this.receive({ ...envelope, source: "live" });
    else if (name === "server:resync") { this.fire(name, envelope); this.sync(); }
    else if (name === "presence.changed") { this.applyPresence(envelope); this.fire(name, envelope); }
    else this.fire(name, envelope);
  }

  /** Presence storms arrive coalesced: one event, a list of changes; keep the latest per subject. */
  applyPresence(envelope) {
    const changes = Array.isArray(envelope?.data?.changes) ? envelope.data.changes : [];
    for (const change of changes) {
      const subject = change.kind === "visitor" ? change.visitor_uid : change.user_id;
      if (subject !== undefined && subject !== null) this.presence.set(change.kind + ":" + subject, change.status);
    }
  }

  /** Send an event and wait for its ack (see the header for errors). */
  emit(name, payload, { timeoutMs = this.ackTimeoutMs } = {}) {
    if (this.state !== "connected") return Promise.reject(new ParleyError("not_connected", "not connected"));
    const id = this.nextAckId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.acks.delete(id);
        reject(new ParleyError("timeout", name + " was not acknowledged in time"));
      }, timeoutMs);
      this.acks.set(id, {
        resolve: (value) => { clearTimeout(timer); resolve(value); },
        reject: (error) => { clearTimeout(timer); reject(error); },
      });
      this.write(SIO_EVENT + this.namespace + "," + id + JSON.stringify([name, payload]));
    });
  }

  /** Send an event without an ack; a failure comes back as a "server:error" event. */
  notify(name, payload) {
    if (this.state !== "connected") return false;
    this.write(SIO_EVENT + this.namespace + "," + JSON.stringify([name, payload]));
    return true;
  }

  /** Follow a conversation: every visible message up to `floor` is already held by the app. */
  track(conversationId, floor = 0) {
    const held = this.conversations.get(conversationId);
    if (!held) this.conversations.set(conversationId, { floor, above: new Set() });
    else if (floor > held.floor) this.raise(held, floor);
  }

  /** The seq a sync of this conversation starts from (everything at or below it is held). */
  floor(conversationId) {
    const held = this.conversations.get(conversationId);
    return held ? held.floor : 0;
  }

  raise(held, floor) {
    held.floor = Math.max(held.floor, floor);
    for (const seq of held.above) if (seq <= held.floor) held.above.delete(seq);
    while (held.above.delete(held.floor + 1)) held.floor++;
  }

  /** Deliver a message once per (conversation, seq); returns false for a duplicate. */
  receive(envelope) {
    const message = envelope.data;
    const id = message.conversation_id, seq = message.seq;
    // A live message of a conversation not followed yet starts following it there: everything
    // below it is the page's business (it loads history its own way), and from here on a gap
    // between live messages is caught. Floor 0 would sync the whole history of every
    // conversation an inbox does not show, on its first new message.
    if (!this.conversations.has(id)) this.conversations.set(id, { floor: Math.max(0, seq - 1), above: new Set() });
    const held = this.conversations.get(id);
    if (seq <= held.floor || held.above.has(seq)) return false;
    held.above.add(seq);
    this.raise(held, held.floor);
    this.fire("message.created", { type: "message.created", conversation_id: id, seq, ...envelope, data: message });
    if (held.above.size && envelope.source === "live") this.gapSoon();
    return true;
  }

  gapSoon() {
    if (this.gapTimer) return;
    this.gapTimer = setTimeout(() => { this.gapTimer = null; this.sync(); }, 250);
  }

  /** Catch up every tracked conversation from its floor; one round at a time. */
  sync() {
    if (this.syncing) { this.resyncWanted = true; return this.syncing; }
    this.syncing = this.syncRound().finally(() => {
      this.syncing = null;
      if (this.resyncWanted && this.state === "connected") { this.resyncWanted = false; this.sync(); }
    });
    return this.syncing;
  }

  async syncRound() {
    let pending = [...this.conversations.keys()];
    const done = [];
    try {
      while (pending.length && this.state === "connected") {
        const batch = pending.slice(0, SYNC_BATCH);
        pending = pending.slice(SYNC_BATCH);
        const asked = {};
        for (const id of batch) asked[id] = this.floor(id);
        const answer = await this.emit("sync", { conversations: asked });
        for (const [key, page] of Object.entries(answer.conversations || {})) {
          const id = Number(key), held = this.conversations.get(id);
          let highest = asked[key];
          for (const message of page.messages) {
            this.receive({ type: "message.created", data: message, source: "sync" });
            highest = Math.max(highest, message.seq);
          }
          this.raise(held, highest);
          if (page.has_more) pending.push(id); else done.push(id);
        }
        for (const key of Object.keys(answer.errors || {})) this.conversations.delete(Number(key));
      }
      this.fire("synced", { conversations: done });
    } catch (error) {
      if (error.code !== "disconnected" && error.code !== "not_connected") this.fire("sync_error", { code: error.code, message: error.message });
    }
  }
}
