// Load client for bench/e2e.py: visitors send `message:send` at a steady total rate, one agent
// receives `message.created`; latency = agent receipt - send, both read from this process's clock.
// Raw Engine.IO v4 / Socket.IO v5 frames over npm `ws`, so the client costs little next to the server.
// usage: node e2e.mjs <ws url> <visitor auth file: one JSON object per line> <agent auth JSON> <rate> <seconds> [trace file]
// stdout: one JSON line {sent, acked, refused, received, lost, p50, p99, max, ack_p50, ack_p99, rate}.
// The trace file (optional) gets one line per message: client_msg_id, send, ack, receipt (Unix ms).
import { randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import WebSocket from "ws";

const [url, visitorFile, agentAuth, rateText, secondsText, traceFile] = process.argv.slice(2);
const rate = Number(rateText), total = Math.round(rate * Number(secondsText));
const visitorAuths = readFileSync(visitorFile, "utf8").split("\n").filter(Boolean);
const wall = () => performance.timeOrigin + performance.now();

const sentAt = new Map();   // client_msg_id -> performance.now() at send
const ackAt = new Map(), receivedAt = new Map();
let refused = 0;

function connect(namespace, auth, onEvent) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const prefix = `${namespace},`;  // after "4" (Engine.IO message) and the Socket.IO packet type
    const acks = new Map();
    let nextAck = 1;
    const socket = {
      emit(event, data, onAck) {
        const id = nextAck++;
        acks.set(id, onAck);
        ws.send(`42${namespace},${id}${JSON.stringify([event, data])}`);
      },
      close() { ws.close(); },
    };
    ws.on("message", (raw) => {
      const text = raw.toString();
      if (text === "2") { ws.send("3"); return; }
      if (text[0] === "0") { ws.send(`40${namespace},${auth}`); return; }
      if (text[0] !== "4" || !text.startsWith(prefix, 2)) return;
      const body = text.slice(2 + prefix.length);
      if (text[1] === "0") { resolve(socket); return; }
      if (text[1] === "4") { reject(new Error(`${namespace}: ${body}`)); return; }
      if (text[1] === "2") { onEvent?.(body); return; }
      if (text[1] === "3") {
        const bracket = body.indexOf("[");
        const callback = acks.get(Number(body.slice(0, bracket)));
        acks.delete(Number(body.slice(0, bracket)));
        callback?.(JSON.parse(body.slice(bracket))[0]);
      }
    });
    ws.on("error", reject);
  });
}

let finish;
const finished = new Promise((resolve) => { finish = resolve; });
const agent = await connect("/agent", agentAuth, (body) => {
  if (!body.startsWith('["message.created"')) return;
  const at = performance.now();
  const id = JSON.parse(body)[1].data.client_msg_id;
  if (sentAt.has(id) && !receivedAt.has(id)) {
    receivedAt.set(id, at);
    if (receivedAt.size === total) finish();
  }
});
const visitors = [];
for (let i = 0; i < visitorAuths.length; i += 200) {
  visitors.push(...await Promise.all(visitorAuths.slice(i, i + 200).map((auth) => connect("/visitor", auth))));
}

const began = performance.now();
let n = 0;
await new Promise((resolve) => {
  const tick = () => {
    const due = Math.min(total, Math.floor(((performance.now() - began) * rate) / 1000) + 1);
    for (; n < due; n++) {
      const id = randomUUID();
      sentAt.set(id, performance.now());
      visitors[n % visitors.length].emit("message:send", { body: `m${n}`, client_msg_id: id }, (answer) => {
        if (answer && answer.accepted) ackAt.set(id, performance.now()); else refused++;
      });
    }
    if (n < total) setTimeout(tick, 1); else resolve();
  };
  tick();
});
const sending = (performance.now() - began) / 1000;
await Promise.race([finished, new Promise((resolve) => setTimeout(resolve, 30000))]);

const pct = (values, p) => {
  const sorted = Float64Array.from(values).sort();
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : null;
};
const latencies = [...receivedAt].map(([id, at]) => at - sentAt.get(id));
const ackLatencies = [...ackAt].map(([id, at]) => at - sentAt.get(id));
if (traceFile) {
  const origin = performance.timeOrigin;
  const lines = [...sentAt].map(([id, at]) => [id, origin + at, ackAt.has(id) ? origin + ackAt.get(id) : null,
    receivedAt.has(id) ? origin + receivedAt.get(id) : null].join(","));
  writeFileSync(traceFile, lines.join("\n") + "\n");
}
console.log(JSON.stringify({
  sent: total, acked: ackAt.size, refused, received: receivedAt.size, lost: total - receivedAt.size,
  rate: total / sending, p50: pct(latencies, 0.5), p99: pct(latencies, 0.99), max: pct(latencies, 1),
  ack_p50: pct(ackLatencies, 0.5), ack_p99: pct(ackLatencies, 0.99),
}));
for (const socket of [...visitors, agent]) socket.close();
process.exit(0);
