/**
 * Transport micro-benchmark (issue 7, "decide by measurement"): CLIENTS Deno built-in WebSocket clients each
 * send a gradient-sized binary frame at once, and the server answers each with a weights-sized one, through
 * npm:ws's server or Deno's own (Deno.upgradeWebSocket). Prints the median time until all answers are in.
 *   deno run --allow-net=127.0.0.1 --allow-read --allow-env --allow-ffi scaling/transport_bench.ts [MB] [REPS] [CLIENTS]
 */
import { createServer } from "node:http";
import { type WebSocket as WsSocket, WebSocketServer } from "ws";

const MB = Number(Deno.args[0] ?? 4.9);
const REPS = Number(Deno.args[1] ?? 30);
const CLIENTS = Number(Deno.args[2] ?? 1);
const bytes = Math.round(MB * 1e6);
const payload = new Uint8Array(bytes).fill(7);

async function client(url: string): Promise<number> {
  const sockets = await Promise.all(Array.from({ length: CLIENTS }, async () => {
    const socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";
    await new Promise((r) => socket.onopen = r);
    return socket;
  }));
  const times: number[] = [];
  for (let i = 0; i < REPS + 3; i++) {
    const t = performance.now();
    const answers = sockets.map((socket) => new Promise((r) => socket.onmessage = r));
    for (const socket of sockets) socket.send(payload);
    await Promise.all(answers);
    if (i >= 3) times.push(performance.now() - t);
  }
  for (const socket of sockets) socket.close();
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function wsServer(): Promise<number> {
  const http = createServer();
  const wss = new WebSocketServer({ server: http, maxPayload: 2 * bytes });
  wss.on("connection", (s: WsSocket) => s.on("message", () => s.send(payload)));
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", () => r()));
  const port = (http.address() as { port: number }).port;
  const ms = await client(`ws://127.0.0.1:${port}`);
  for (const c of wss.clients) c.terminate();
  await new Promise((r) => wss.close(() => http.close(r)));
  return ms;
}

async function denoServer(): Promise<number> {
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = () => socket.send(payload);
    return response;
  });
  const ms = await client(`ws://127.0.0.1:${server.addr.port}`);
  await server.shutdown();
  return ms;
}

console.log(`${MB} MB each way, ${CLIENTS} client(s), median of ${REPS} round trips`);
console.log(`npm:ws server   + Deno client: ${(await wsServer()).toFixed(2)} ms`);
console.log(`Deno server     + Deno client: ${(await denoServer()).toFixed(2)} ms`);
