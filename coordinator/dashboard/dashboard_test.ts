/**
 * The dashboard's HTTP side on a real node:http server: what it serves, what it refuses (other paths, other
 * methods, paths out of the run folder, missing tokens), and the event stream a page follows.
 */
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { assert, assertEquals } from "../../shared/testing.ts";
import type { MetricsLine } from "../recorder.ts";
import { dashboardHandler } from "./http.ts";
import {
  DashboardHub,
  type MetricsPoint,
  sampleEpoch,
  thin,
  withoutSecrets,
  type WorkerView,
} from "./hub.ts";

const TOKEN = "s3cret-token";
const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);

interface Fixture {
  origin: string;
  port: number;
  hub: DashboardHub;
  runDir: string;
  workers: WorkerView[];
  close(): Promise<void>;
}

async function start(options: { token?: string; maxClients?: number } = {}): Promise<Fixture> {
  const runDir = await Deno.makeTempDir({ prefix: "gantry-dashboard-" });
  await Deno.mkdir(join(runDir, "samples"));
  await Deno.writeFile(join(runDir, "samples", "epoch-0001.png"), PNG);
  await Deno.writeTextFile(join(runDir, "config.json"), '{"secret": "not for the page"}');
  const workers: WorkerView[] = [];
  const hub = new DashboardHub({
    runDir,
    maxClients: options.maxClients ?? 4,
    maxPoints: 1000,
    workers: () => structuredClone(workers),
  });
  await hub.load();
  const server: Server = createServer(
    dashboardHandler({ hub, runDir, token: options.token, host: "127.0.0.1" }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    hub,
    runDir,
    workers,
    async close() {
      hub.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await Deno.remove(runDir, { recursive: true });
    },
  };
}

/** A request whose path goes out exactly as written (fetch would resolve "..": a browser-less attacker won't). */
async function rawGet(port: number, path: string, headers: Record<string, string> = {}): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const all = { Host: "127.0.0.1", Connection: "close", ...headers };
    const lines = [`GET ${path} HTTP/1.1`, ...Object.entries(all).map(([k, v]) => `${k}: ${v}`)];
    await conn.write(new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n"));
    const buffer = new Uint8Array(64);
    const n = await conn.read(buffer);
    const status = new TextDecoder().decode(buffer.subarray(0, n ?? 0)).match(/^HTTP\/1\.1 (\d{3})/);
    assert(status !== null, `a status line for ${path}`);
    return Number(status![1]);
  } finally {
    conn.close();
  }
}

function metricsLine(step: number): MetricsLine {
  return {
    epoch: 1,
    step,
    lossD: 1.5,
    lossG: 0.75,
    dReal: 0.6,
    dFakeD: 0.4,
    dFakeG: 0.3,
    imagesPerSec: 100,
    workers: 2,
    backends: ["wasm", "wasm"],
    stepMs: 320,
    computeMs: 300,
    heapMb: 1,
    rssMb: 2,
    time: new Date().toISOString(),
  };
}

/** Reads server-sent events from a response, one at a time, each bounded by a timeout. */
function eventReader(response: Response) {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  return {
    async next(timeoutMs = 10_000): Promise<{ event: string; data: unknown }> {
      const deadline = AbortSignal.timeout(timeoutMs);
      for (;;) {
        const end = buffered.indexOf("\n\n");
        if (end >= 0) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          if (block.startsWith(":")) continue; // a keep-alive comment
          const event = block.match(/^event: (.*)$/m)![1];
          const data = JSON.parse(block.match(/^data: (.*)$/m)![1]);
          return { event, data };
        }
        const read = await Promise.race([
          reader.read(),
          new Promise<never>((_, reject) =>
            deadline.addEventListener("abort", () => reject(new Error("no event in time")), { once: true })
          ),
        ]);
        if (read.done) throw new Error("the stream ended");
        buffered += read.value;
      }
    },
    cancel: () => reader.cancel(),
  };
}

Deno.test("the page and its pinned uPlot are served from this server; other paths are 404", async () => {
  const f = await start();
  try {
    const page = await fetch(`${f.origin}/`);
    assertEquals(page.status, 200);
    assert(page.headers.get("content-type")!.startsWith("text/html"), "HTML");
    const html = await page.text();
    assert(html.includes('src="/vendor/uPlot.iife.min.js"') && !/https?:\/\//.test(html), "no CDN");
    assert(page.headers.get("content-security-policy")!.includes("default-src 'none'"), "a CSP");
    const uplot = await fetch(`${f.origin}/vendor/uPlot.iife.min.js`);
    assertEquals(uplot.status, 200);
    assert((await uplot.text()).includes("uPlot"), "uPlot's bundle");
    for (const path of ["/app.js", "/app.css", "/vendor/uPlot.min.css"]) {
      const response = await fetch(`${f.origin}${path}`);
      await response.body?.cancel();
      assertEquals(response.status, 200, path);
    }
    for (
      const path of ["/index.html", "/nope", "/api/nope", "/static/app.js", "/vendor/uPlot.js", "/deno.json"]
    ) {
      const response = await fetch(`${f.origin}${path}`);
      await response.body?.cancel();
      assertEquals(response.status, 404, path);
    }
  } finally {
    await f.close();
  }
});

Deno.test("sample grids: only samples/epoch-NNNN.png of the run folder; traversal and other files are refused", async () => {
  const f = await start();
  try {
    const grid = await fetch(`${f.origin}/samples/epoch-0001.png`);
    assertEquals(grid.status, 200);
    assertEquals(grid.headers.get("content-type"), "image/png");
    assertEquals(new Uint8Array(await grid.arrayBuffer()), PNG);
    const refused = [
      "/samples/../config.json",
      "/samples/..%2fconfig.json",
      "/samples/%2e%2e/config.json",
      "/samples/epoch-0001.png/../../config.json",
      "/samples/../../../../etc/passwd",
      "/samples/epoch-1.png",
      "/samples/epoch-0002.png",
      "/samples/epoch-0001.png.bak",
      "/samples/",
      "/config.json",
      "/metrics.jsonl",
      "//etc/passwd",
    ];
    for (const path of refused) assertEquals(await rawGet(f.port, path), 404, path);
    assertEquals(sampleEpoch("epoch-0012.png"), 12);
    assertEquals(sampleEpoch("../epoch-0012.png"), null);
    assertEquals(sampleEpoch("epoch-0012.png\0"), null);
  } finally {
    await f.close();
  }
});

Deno.test("read-only: other methods get 405; a foreign Host header gets 403 when there is no token", async () => {
  const f = await start();
  try {
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      const response = await fetch(`${f.origin}/api/state`, { method });
      await response.body?.cancel();
      assertEquals(response.status, 405, method);
    }
    // A page of another site that got its name to resolve to 127.0.0.1 (DNS rebinding) is refused.
    assertEquals(await rawGet(f.port, "/api/state", { Host: "evil.example:8765" }), 403);
    assertEquals(await rawGet(f.port, "/api/state", { Host: `localhost:${f.port}` }), 200);
    assertEquals(await rawGet(f.port, "/api/state", { Host: `[::1]:${f.port}` }), 200);
  } finally {
    await f.close();
  }
});

Deno.test("with a token: run data needs it (Bearer, compared in constant time); the page itself asks for it", async () => {
  const f = await start({ token: TOKEN });
  try {
    const page = await fetch(`${f.origin}/`);
    assert((await page.text()).includes('id="login"'), "the page has the token form");
    for (const path of ["/api/state", "/api/events", "/samples/epoch-0001.png"]) {
      const attempts: Record<string, string>[] = [{}, { authorization: "Bearer wrong" }, {
        authorization: `Basic ${TOKEN}`,
      }];
      for (const headers of attempts) {
        const response = await fetch(`${f.origin}${path}`, { headers });
        await response.body?.cancel();
        assertEquals(response.status, 401, `${path} with ${JSON.stringify(headers)}`);
      }
    }
    const auth = { authorization: `Bearer ${TOKEN}` };
    const state = await fetch(`${f.origin}/api/state`, { headers: auth });
    assertEquals(state.status, 200);
    const grid = await fetch(`${f.origin}/samples/epoch-0001.png`, { headers: auth });
    assertEquals(new Uint8Array(await grid.arrayBuffer()), PNG);
    // With a token, a non-loopback name is fine (--host 0.0.0.0 reached by the machine's name).
    assertEquals(
      await rawGet(f.port, "/api/state", { Host: "gpu-box:8765", Authorization: `Bearer ${TOKEN}` }),
      200,
    );
  } finally {
    await f.close();
  }
});

Deno.test("the event stream: a snapshot, then each step, each grid and each change of the workers", async () => {
  const f = await start({ maxClients: 1 });
  try {
    f.hub.setRun({
      status: "training",
      epochs: 3,
      totalSteps: 30,
      record: { config: { token: TOKEN, lr: 1 } },
    });
    const response = await fetch(`${f.origin}/api/events`);
    assertEquals(response.status, 200);
    assertEquals(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
    const events = eventReader(response);
    const first = await events.next();
    assertEquals(first.event, "snapshot");
    const snapshot = first.data as { run: { status: string; record: unknown }; samples: number[] };
    assertEquals(snapshot.run.status, "training");
    assertEquals(snapshot.run.record, { config: { lr: 1 } }, "the token never reaches a page");
    assertEquals(snapshot.samples, [1], "grids already in the run folder");

    const busy = await fetch(`${f.origin}/api/events`);
    await busy.body?.cancel();
    assertEquals(busy.status, 503, "past --dashboard-max-clients");

    f.hub.listener.metrics!(metricsLine(1));
    const metrics = await events.next();
    assertEquals(metrics.event, "metrics");
    assertEquals((metrics.data as MetricsPoint).step, 1);
    assertEquals((metrics.data as MetricsPoint).lossD, 1.5);

    f.hub.listener.samples!(2, join(f.runDir, "samples", "epoch-0002.png"));
    assertEquals(await events.next(), { event: "sample", data: { epoch: 2 } });

    f.workers.push({
      id: 1,
      name: "w",
      gpu: null,
      backend: "wasm",
      devices: ["CPU"],
      state: "GONE",
      goneReason: "E_CLOSED: connection closed (1006)",
      lastSeen: 0,
      imagesPerSec: 0,
      joinedAtStep: 1,
    });
    const workers = await events.next();
    assertEquals(workers.event, "workers");
    assertEquals((workers.data as { workers: WorkerView[] }).workers.map((w) => w.state), ["GONE"]);
    await events.cancel();
  } finally {
    await f.close();
  }
});

Deno.test("a resumed run's dashboard starts with the steps already recorded; long runs are thinned", async () => {
  const runDir = await Deno.makeTempDir({ prefix: "gantry-dashboard-" });
  try {
    const lines = [1, 2, 3].map((s) => JSON.stringify(metricsLine(s))).join("\n") + "\n{torn";
    await Deno.writeTextFile(join(runDir, "metrics.jsonl"), lines);
    const hub = new DashboardHub({ runDir, maxClients: 1, maxPoints: 100, workers: () => [] });
    await hub.load();
    assertEquals(hub.snapshot().metrics.map((p) => p.step), [1, 2, 3]);
    for (let step = 4; step <= 250; step++) hub.listener.metrics!(metricsLine(step));
    const steps = hub.snapshot().metrics.map((p) => p.step);
    assert(steps.length <= 100, `at most --dashboard-max-points: ${steps.length}`);
    assertEquals(steps.at(-1), 250, "the newest step is kept");
    assert(steps.every((s, i) => i === 0 || s > steps[i - 1]), "in order");
  } finally {
    await Deno.remove(runDir, { recursive: true });
  }
  const points = Array.from({ length: 11 }, (_, i) => ({ step: i + 1 }) as MetricsPoint);
  assertEquals(thin(points, 10).map((p) => p.step), [2, 4, 6, 8, 10, 11]);
  assertEquals(thin(points, 11).length, 11);
  assertEquals(withoutSecrets({ a: [{ token: "x", b: 1 }], token: "y" }), { a: [{ b: 1 }] });
});
