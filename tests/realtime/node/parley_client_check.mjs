// Drives static/js/parley-client.js (the browser client) under Node's WebSocket against a real
// gateway. Prints one JSON line per client event; reads commands from stdin, one per line:
// "rtt" (emit rtt, print its ack), "exit". Args: url, namespace, token, conversation id, floor.
import { createInterface } from "node:readline";
import { ParleyClient } from "../../../static/js/parley-client.js";

const [url, namespace, token, conversation, floor] = process.argv.slice(2);
const say = (event, detail) => console.log(JSON.stringify({ event, detail }));
const client = new ParleyClient({ url, namespace, auth: () => ({ token }), backoffMs: 100, maxBackoffMs: 500 });
client.track(Number(conversation), Number(floor));
for (const name of ["state", "connect", "synced", "disconnect", "connect_error", "server:resync"]) {
  client.on(name, (detail) => say(name, detail));
}
client.on("message.created", (envelope) => say("message", { seq: envelope.seq, source: envelope.source,
  body: envelope.data.body }));
client.connect();
for await (const line of createInterface({ input: process.stdin })) {
  if (line === "rtt") say("rtt", await client.emit("rtt", {}));
  if (line === "exit") { client.close(); process.exit(0); }
}
