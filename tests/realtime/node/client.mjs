// Drives Parley's gateway with the official npm socket.io-client: two namespaces over one
// connection (one Manager), auth per namespace, acks both ways, a refusal with its reason,
// events pushed by the server. Prints one JSON line with what it saw; exits non-zero on failure.
import { Manager } from "socket.io-client";

const [url, visitorToken, agentToken] = process.argv.slice(2);
const result = {};
const fail = (why) => { console.log(JSON.stringify({ error: String(why), result })); process.exit(1); };
setTimeout(() => fail("timeout"), 15000);

const manager = new Manager(url, { transports: ["websocket"], reconnection: false });
const connectOf = (socket) => new Promise((resolve, reject) => {
  socket.on("connect", resolve);
  socket.on("connect_error", reject);
});

// A Manager keeps one Socket per namespace, so the refusal gets a Manager of its own.
const refusing = new Manager(url, { transports: ["websocket"], reconnection: false });
const refused = refusing.socket("/agent", { auth: { token: "forged.token" } });
try { await connectOf(refused); fail("forged token accepted"); } catch (error) {
  result.refused = { message: error.message, data: error.data };
}
refused.close();
refusing.engine?.close();

const visitor = manager.socket("/visitor", { auth: { token: visitorToken } });
const agent = manager.socket("/agent", { auth: { token: agentToken } });
visitor.on("rtt:probe", (data, ack) => ack("pong from js"));
const navigated = new Promise((resolve) => agent.on("visitor.navigated", resolve));
try {
  await Promise.all([connectOf(visitor), connectOf(agent)]);
} catch (error) {
  fail(`connect: ${error.message} ${JSON.stringify(error.data)} ${visitor.connected} ${agent.connected}`);
}
result.same_engine = visitor.io.engine === agent.io.engine;
result.transport = visitor.io.engine.transport.name;
result.navigate_ack = await visitor.emitWithAck("navigate", { url: "https://shop.example/js", title: "JS" });
result.navigated = (await navigated).data;
result.rtt = await visitor.emitWithAck("rtt", {});
result.unknown = await agent.emitWithAck("nope", {});
visitor.close();
agent.close();
console.log(JSON.stringify({ ok: true, result }));
process.exit(0);
