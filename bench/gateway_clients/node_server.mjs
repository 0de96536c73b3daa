// Baseline: the Node Socket.IO server (the seed's stack) on the same workload as the gateway:
// every message on a Redis channel is broadcast to every socket of the /agent namespace.
// usage: node node_server.mjs <port> <redis url> <channel>
import { Server } from "socket.io";
import { createClient } from "redis";

const [port, redisUrl, channel] = process.argv.slice(2);
const io = new Server(Number(port), { transports: ["websocket"], perMessageDeflate: false });
const agents = io.of("/agent");
agents.on("connection", (socket) => socket.join("a"));
const subscriber = redisUrl.startsWith("unix://")
  ? createClient({ socket: { path: new URL(redisUrl).pathname } })
  : createClient({ url: redisUrl });
await subscriber.connect();
await subscriber.subscribe(channel, (message) => {
  const envelope = JSON.parse(message);
  agents.to("a").emit(envelope.type, envelope);
});
console.log("listening");
