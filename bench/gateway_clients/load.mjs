// Load client for bench/gateway.py: many raw Engine.IO v4 / Socket.IO v5 websockets (npm `ws`),
// kept cheap so the client is not the bottleneck (no JSON parsing of deliveries).
// usage: node load.mjs <ws url> <namespace> <auth file: one JSON object per line, reused cyclically> <count> [source block]
// Sockets come from 127.0.<source block>.x (10,000 per address): give each run its own block, or the
// previous run's TIME_WAIT ports (bound source addresses cannot reuse them) slow or fail the connects.
// stdout: {"ready": n} once connected; then on stdin "reset" | "stats" -> {"deliveries", "p50", "p99", "max"}.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import WebSocket from "ws";

const [url, namespace, authFile, countText, blockText] = process.argv.slice(2);
const count = Number(countText);
const block = Number(blockText || 0) % 256;
const auths = readFileSync(authFile, "utf8").split("\n").filter(Boolean);
const connectPrefix = `40${namespace},`;
let connected = 0, failed = 0, deliveries = 0, latencies = [], sampleAll = false;
const now = () => performance.timeOrigin + performance.now();

function open(i) {
  return new Promise((resolve) => {
    // 127.0.<block>.x source addresses: more than one ephemeral-port range towards one server port
    const ws = new WebSocket(url, { localAddress: `127.0.${block}.${1 + Math.floor(i / 10000)}`, perMessageDeflate: false });
    ws.on("message", (data) => {
      const text = data.toString();
      const kind = text.charCodeAt(0);
      if (kind === 50) { ws.send("3"); return; }                    // "2" ping
      if (kind === 48) { ws.send(`40${namespace},${auths[i % auths.length]}`); return; } // "0" open
      if (text.startsWith("42")) {
        const at = text.indexOf('"sent_at":');  // only the benchmark's messages count, not presence etc.
        if (at < 0) return;
        deliveries++;
        if ((deliveries & 7) === 0 || sampleAll) latencies.push(now() - parseFloat(text.slice(at + 10, at + 30)) * 1000);
        return;
      }
      if (text.startsWith(connectPrefix)) { connected++; resolve(); return; }
      if (text.startsWith("44")) { failed++; resolve(); }
    });
    ws.on("error", () => { failed++; resolve(); });
  });
}

const batch = 500;  // concurrent handshakes
for (let i = 0; i < count; i += batch) {
  const opening = [];
  for (let j = i; j < Math.min(count, i + batch); j++) opening.push(open(j));
  await Promise.all(opening);
}
console.log(JSON.stringify({ ready: connected, failed }));

const pct = (sorted, p) => sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : null;
createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "reset" || line === "reset-sample-all") {
    deliveries = 0; latencies = []; sampleAll = line === "reset-sample-all";
    console.log(JSON.stringify({ reset: true }));
  }
  else if (line === "stats") {
    const sorted = Float64Array.from(latencies).sort();
    console.log(JSON.stringify({ deliveries, p50: pct(sorted, 0.5), p99: pct(sorted, 0.99), max: pct(sorted, 1) }));
  }
}).on("close", () => process.exit(0));
