/**
 * Bad peers during a real run: wrong or missing token, another protocol version, a frame announcing 300 MB,
 * random bytes, a text frame, silence, a crowd of idle connections, and joined workers that answer with NaN,
 * wrong shapes or stale steps; then thousands of random frames. Each is refused or dropped with its reason,
 * and training goes on with every step exactly once.
 */
import { encodeMessage } from "../shared/codec.ts";
import { PROTOCOL_VERSION, type ResultMessage, type TaskMessage } from "../shared/protocol.ts";
import { Rng } from "../shared/rng.ts";
import { assert, assertEquals, within } from "../shared/testing.ts";
import { TEST_BACKEND } from "./backend.ts";
import { helloMessage, TestPeer } from "./peer.ts";
import {
  assertEachStepOnce,
  cleanup,
  coordinatorUrl,
  metricLines,
  type Proc,
  readMetrics,
  residentMb,
  startCoordinator,
  startWorker,
  waitForSteps,
} from "./processes.ts";
import { clientFrame, RawClient } from "./raw_client.ts";

const TOKEN = "correct horse battery staple";
const START_TIMEOUT_MS = 60_000;
const ANSWER_TIMEOUT_MS = 5_000;
const HANDSHAKE_TIMEOUT_MS = 1_000;
const MAX_PENDING = 16;
const FUZZ_FRAMES = 2_000;
const FUZZ_CONCURRENCY = 8;
const FUZZ_CONNECTION_MS = 20_000;

interface Refusal {
  code: string;
  message: string;
  closeCode: number;
}

/** What the coordinator answers a connection that sends `frame` first. */
async function refusalOf(
  url: string,
  frame: Record<string, unknown> | Uint8Array | string,
): Promise<Refusal> {
  const peer = await TestPeer.open(url, ANSWER_TIMEOUT_MS);
  try {
    if (frame instanceof Uint8Array || typeof frame === "string") peer.sendBytes(frame);
    else peer.send(frame);
    const error = await peer.next(ANSWER_TIMEOUT_MS);
    const { code } = await peer.closedWithin(ANSWER_TIMEOUT_MS);
    return { code: String(error.code), message: String(error.message), closeCode: code };
  } finally {
    peer.close();
  }
}

/** Joins as a worker, takes the next task, answers it with `spoil(result)`, and returns the refusal. */
async function rogueWorker(url: string, spoil: (result: ResultMessage) => ResultMessage): Promise<Refusal> {
  const peer = await TestPeer.open(url, ANSWER_TIMEOUT_MS);
  try {
    const { sizes } = await peer.join(TOKEN, ANSWER_TIMEOUT_MS);
    const task: TaskMessage = await peer.task(START_TIMEOUT_MS);
    const result: ResultMessage = {
      type: "result",
      version: PROTOCOL_VERSION,
      step: task.step,
      phase: task.phase,
      count: task.count,
      grads: new Float32Array(task.phase === "D" ? sizes.discriminatorSize : sizes.generatorSize),
      lossSum: 1,
      realScoreSum: 0,
      fakeScoreSum: 0,
      computeMs: 1,
      ...(task.phase === "G" && sizes.batchNormSize > 0
        ? { batchNormSums: new Float32Array(sizes.batchNormSize) }
        : {}),
    };
    peer.send(spoil(result));
    const error = await peer.next(ANSWER_TIMEOUT_MS);
    const { code } = await peer.closedWithin(ANSWER_TIMEOUT_MS);
    return { code: String(error.code), message: String(error.message), closeCode: code };
  } finally {
    peer.close();
  }
}

/** One fuzz connection: a few random frames of one kind; resolves with how many it sent once it is closed. */
async function fuzzConnection(port: number, rng: Rng): Promise<number> {
  const kind = rng.int(5);
  return await within(FUZZ_CONNECTION_MS, `fuzz connection of kind ${kind}`, fuzzOnce(port, rng, kind));
}

async function fuzzOnce(port: number, rng: Rng, kind: number): Promise<number> {
  const client = await RawClient.open(port, kind !== 0);
  const frames = 1 + rng.int(4);
  const randomBytes = (max: number) => {
    const bytes = new Uint8Array(rng.int(max));
    for (let i = 0; i < bytes.length; i++) bytes[i] = rng.int(256);
    return bytes;
  };
  const randomMessage = () => {
    const types = ["hello", "result", "heartbeat", "error", "task", "welcome", "stop", "nonsense"];
    const message: Record<string, unknown> = {
      type: types[rng.int(types.length)],
      version: rng.int(4) === 0 ? rng.int(5) : PROTOCOL_VERSION,
    };
    if (rng.int(2)) message.step = rng.int(1000) - 10;
    if (rng.int(2)) message.phase = ["D", "G", "X"][rng.int(3)];
    if (rng.int(2)) message.count = rng.int(100);
    if (rng.int(2)) message.grads = new Float32Array(rng.int(5000)).map(() => rng.normal() * 1e30);
    if (rng.int(2)) message.token = rng.int(2) ? TOKEN : "guess";
    return encodeMessage(message as never);
  };
  for (let i = 0; i < frames; i++) {
    switch (kind) {
      case 0: // not even an HTTP request
        await client.send(new Uint8Array([0, ...randomBytes(512)]));
        break;
      case 1: // bytes that are no WebSocket frame
        await client.send(randomBytes(64));
        break;
      case 2: // a binary frame of random bytes
        await client.send(clientFrame(randomBytes(2048)));
        break;
      case 3: // a msgpack map with random fields
        await client.send(clientFrame(randomMessage()));
        break;
      case 4: // a proper hello, then garbage from a joined worker
        await client.send(clientFrame(i === 0 ? encodeMessage(helloMessage(TOKEN)) : randomMessage()));
        break;
    }
  }
  // Kind 4 with a single frame is a worker that joined and then sits still: hang up, as a crashed one would.
  const ending = await client.readUntilClosed(kind === 4 && frames === 1 ? 200 : 10 * HANDSHAKE_TIMEOUT_MS);
  assert(ending.closed || (kind === 4 && frames === 1), `fuzz connection of kind ${kind} was not closed`);
  return frames;
}

Deno.test({
  name:
    "bad peers are refused with their reason while training goes on; thousands of random frames harm nothing",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "gantry-hostile-" });
    const env = { GANTRY_TOKEN: TOKEN };
    let coordinator: Proc | null = null;
    let worker: Proc | null = null;
    try {
      coordinator = startCoordinator([
        "--model=mlp",
        "--seed=5",
        "--examples=512",
        "--batch-size=16",
        "--epochs=1000",
        "--workers=1",
        "--port=0",
        "--progress=none",
        `--out=${out}`,
        `--handshake-timeout-ms=${HANDSHAKE_TIMEOUT_MS}`,
        `--max-pending-connections=${MAX_PENDING}`,
        "--phase-attempts=100",
        // Fuzzed workers that join and then say nothing useful are dropped for silence.
        "--heartbeat-interval-ms=250",
        "--heartbeat-timeout-ms=2000",
      ], env);
      const url = await coordinatorUrl(coordinator, START_TIMEOUT_MS);
      const port = Number(new URL(url).port);
      worker = startWorker("worker", [`--coordinator=${url}`, `--backend=${TEST_BACKEND}`], env);
      await waitForSteps(out, 2, START_TIMEOUT_MS);

      const hello = helloMessage(TOKEN) as unknown as Record<string, unknown>;
      const checks: Array<[string, Refusal, string, number]> = [
        ["wrong token", await refusalOf(url, { ...hello, token: "guess" }), "E_AUTH", 1008],
        ["no token", await refusalOf(url, { ...helloMessage() }), "E_AUTH", 1008],
        [
          "another protocol",
          await refusalOf(url, { ...hello, version: PROTOCOL_VERSION + 1 }),
          "E_PROTOCOL_VERSION",
          1002,
        ],
        ["random bytes", await refusalOf(url, new Uint8Array([193, 7, 7, 7])), "E_BAD_MESSAGE", 1002],
        ["text frame", await refusalOf(url, "hello"), "E_BAD_MESSAGE", 1002],
        [
          "heartbeat first",
          await refusalOf(url, { type: "heartbeat", version: PROTOCOL_VERSION }),
          "E_PROTOCOL",
          1002,
        ],
        [
          "NaN gradients",
          await rogueWorker(url, (r) => ({ ...r, grads: r.grads.map((v, i) => i === 3 ? NaN : v) })),
          "E_BAD_VALUES",
          1007,
        ],
        [
          "wrong shape",
          await rogueWorker(url, (r) => ({ ...r, grads: new Float32Array(r.grads.length - 1) })),
          "E_BAD_MESSAGE",
          1002,
        ],
        ["stale step", await rogueWorker(url, (r) => ({ ...r, step: r.step - 1 })), "E_PROTOCOL", 1002],
      ];
      for (const [what, refusal, code, closeCode] of checks) {
        console.log(`${what}: ${refusal.code} (${refusal.closeCode}) ${refusal.message}`);
        assertEquals([refusal.code, refusal.closeCode], [code, closeCode], what);
      }
      const version = checks[2][1].message;
      const versions = [`version ${PROTOCOL_VERSION + 1}`, `version ${PROTOCOL_VERSION}`];
      assert(versions.every((v) => version.includes(v)), version);

      // A 300 MB frame is refused from its header, before any of it is buffered.
      const before = await residentMb(coordinator.child.pid);
      const big = await RawClient.open(port);
      await big.send(clientFrame(new Uint8Array(1024), 2, 300 * 1024 * 1024));
      const bigEnding = await big.readUntilClosed(ANSWER_TIMEOUT_MS);
      const after = await residentMb(coordinator.child.pid);
      console.log(
        `300 MB frame: close ${bigEnding.closeCode}; coordinator RSS ${before.toFixed(0)} → ${
          after.toFixed(0)
        } MB`,
      );
      assertEquals(bigEnding.closeCode, 1009);
      assert(after - before < 100, `RSS grew by ${after - before} MB`);

      // A crowd of silent connections: those over the limit are refused at once, the rest time out.
      const crowd = await Promise.all(Array.from({ length: 2 * MAX_PENDING }, () => RawClient.open(port)));
      const endings = await Promise.all(crowd.map((c) => c.readUntilClosed(10 * HANDSHAKE_TIMEOUT_MS)));
      const codes = endings.map((e) => e.closeCode);
      console.log(`crowd of ${crowd.length}: ${codes.filter((c) => c === 1013).length} refused as overload`);
      assert(codes.every((c) => c === 1013 || c === 1008), `close codes ${codes}`);
      assert(codes.filter((c) => c === 1013).length >= MAX_PENDING - 2, `close codes ${codes}`);

      // Connections that never even send an HTTP request are closed after the handshake timeout too.
      const mute = await Promise.all(Array.from({ length: 4 }, () => RawClient.open(port, false)));
      const muteEndings = await Promise.all(mute.map((c) => c.readUntilClosed(10 * HANDSHAKE_TIMEOUT_MS)));
      assert(muteEndings.every((e) => e.closed), "a connection that sent nothing was left open");

      const stepsBeforeFuzz = await metricLines(out);
      const rng = new Rng(11);
      let sent = 0;
      let connections = 0;
      let failures = 0;
      await Promise.all(Array.from({ length: FUZZ_CONCURRENCY }, async () => {
        while (sent < FUZZ_FRAMES) {
          connections++;
          try {
            const frames = await fuzzConnection(port, rng);
            sent += frames;
          } catch (error) {
            // The server may reset a connection it refuses; more than a few would mean it is in trouble.
            failures++;
            console.log(`fuzz connection ${connections}: ${(error as Error).message}`);
            assert(
              failures <= connections / 100 + 2,
              `${failures} of ${connections} fuzz connections failed`,
            );
          }
        }
      }));
      await waitForSteps(out, stepsBeforeFuzz + 5, START_TIMEOUT_MS);
      console.log(
        `fuzz: ${sent} frames over ${connections} connections; steps ${stepsBeforeFuzz} → ${await metricLines(
          out,
        )}`,
      );

      coordinator.kill("SIGINT");
      assertEquals(await coordinator.exit(START_TIMEOUT_MS), 130, coordinator.output());
      const log = coordinator.output();
      for (
        const reason of ["E_AUTH", "E_PROTOCOL_VERSION", "E_FRAME_TOO_LARGE", "E_BAD_VALUES", "E_TIMEOUT"]
      ) {
        assert(log.includes(reason), `the coordinator's log does not name ${reason}`);
      }
      const steps = (await readMetrics(out)).length;
      await assertEachStepOnce(out, steps);
      assert(worker.output().includes("joined as worker 1"), worker.output());
    } finally {
      await cleanup(...[coordinator, worker].filter((p): p is Proc => p !== null));
      await Deno.remove(out, { recursive: true });
    }
  },
});
