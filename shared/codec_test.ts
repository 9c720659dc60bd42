import { assert, assertEquals, assertThrows } from "./testing.ts";
import { decodeFrame, encodeMessage } from "./codec.ts";
import { type Message, PROTOCOL_VERSION, type TaskMessage } from "./protocol.ts";
import { GantryError } from "./errors.ts";

Deno.test("encodeMessage() round-trips Float32Array and Uint8Array contents bit for bit", () => {
  const weights = new Float32Array(10_001);
  for (let i = 0; i < weights.length; i++) weights[i] = Math.sin(i) * 1e3 + i * 1e-7;
  weights[7] = -0;
  weights[8] = 1e-38;
  const task: TaskMessage = {
    type: "task",
    version: 1,
    step: 3,
    phase: "D",
    generatorVersion: 2,
    discriminatorVersion: 2,
    generator: weights,
    count: 2,
    z: new Float32Array([0.5, -1.25, 3.75, 1e-20]),
    labels: new Uint8Array([9, 0]),
    real: new Uint8Array([0, 255, 128]),
    realLabels: new Uint8Array([1, 2]),
  };
  const back = decodeFrame(encodeMessage(task)) as TaskMessage;
  assertEquals(back.generator instanceof Float32Array, true);
  assertEquals(
    new Uint8Array(back.generator!.buffer, back.generator!.byteOffset, back.generator!.byteLength),
    new Uint8Array(weights.buffer),
  );
  assertEquals(Array.from(back.z), Array.from(task.z));
  assertEquals(back.labels instanceof Uint8Array, true);
  assertEquals(Array.from(back.real!), [0, 255, 128]);
  assertEquals(back.step, 3);
});

Deno.test("encodeMessage() keeps a Float32Array exact when it does not start at a 4-byte boundary of the frame", () => {
  for (let pad = 0; pad < 4; pad++) {
    const message = {
      type: "error",
      version: 1,
      code: "x".repeat(pad),
      message: "",
      g: new Float32Array([1.1, 2.2, 3.3]),
    };
    const back = decodeFrame(encodeMessage(message as never)) as { g: Float32Array };
    assertEquals(Array.from(back.g), Array.from(new Float32Array([1.1, 2.2, 3.3])));
  }
});

Deno.test("decodeFrame() rejects random bytes with E_BAD_MESSAGE", () => {
  const error = assertThrows(() => decodeFrame(new Uint8Array([0xc1, 0xff, 0x00])), GantryError);
  assertEquals(error.code, "E_BAD_MESSAGE");
});

Deno.test("a float16 wire halves the bytes of the listed fields and decodes them as Float16Array views", () => {
  const grads = new Float32Array(4099);
  for (let i = 0; i < grads.length; i++) grads[i] = Math.sin(i) * 100;
  const message = {
    type: "result",
    version: 1,
    step: 1,
    phase: "G",
    count: 2,
    grads,
    lossSum: 1,
    realScoreSum: 0,
    fakeScoreSum: 0,
    computeMs: 1,
    batchNormSums: new Float32Array([1e6, -2]),
  } as const;
  const full = encodeMessage(message);
  const half = encodeMessage(message, { float16: ["grads"] });
  assertEquals(
    full.length - half.length >= 2 * grads.length - 16,
    true,
    `${full.length} vs ${half.length} bytes`,
  );
  const back = decodeFrame(half) as { grads: Float16Array; batchNormSums: Float32Array };
  assertEquals(back.grads instanceof Float16Array, true);
  assertEquals(back.grads.buffer, half.buffer, "a view on the frame, no copy");
  for (let i = 0; i < grads.length; i++) assertEquals(back.grads[i], Math.f16round(grads[i]), `value ${i}`);
  assertEquals(Array.from(back.batchNormSums), [1e6, -2], "fields not listed stay float32");
});

Deno.test("encodeMessage() writes into a given buffer when it fits, and decodes from any byte offset", () => {
  const into = new ArrayBuffer(1 << 16);
  const values = Float32Array.from({ length: 1000 }, (_, i) => i / 3);
  const message = { type: "weights", version: 1, net: "G", weightsVersion: 4, values } as const;
  const frame = encodeMessage(message, undefined, into);
  assertEquals(frame.buffer, into);
  // A frame at an odd offset (as a socket's chunk may hand it over) is copied, and still exact.
  const odd = new Uint8Array(frame.length + 1);
  odd.set(frame, 1);
  const back = decodeFrame(odd.subarray(1)) as { values: Float32Array; weightsVersion: number };
  assertEquals(Array.from(back.values), Array.from(values));
  assertEquals(back.weightsVersion, 4);
});

Deno.test("decodeFrame() refuses tensor entries that overrun the frame or are malformed", () => {
  const frame = encodeMessage({
    type: "weights",
    version: 1,
    net: "D",
    weightsVersion: 0,
    values: new Float32Array(8),
  });
  for (const cut of [frame.subarray(0, frame.length - 4), frame.subarray(0, 3)]) {
    assertEquals(assertThrows(() => decodeFrame(cut), GantryError).code, "E_BAD_MESSAGE");
  }
});

Deno.test("a tensor placed in a shared region leaves the frame small and decodes as a view on the region", () => {
  const memory = new Uint8Array(64 + 4 * 1000);
  const grads = Float32Array.from({ length: 1000 }, (_, i) => i / 7);
  const message: Message = {
    type: "weights",
    version: PROTOCOL_VERSION,
    net: "G",
    weightsVersion: 3,
    values: grads,
  };
  const frame = encodeMessage(message, undefined, undefined, {
    region: "weights",
    memory,
    offsets: { values: 64 },
  });
  assert(frame.length < 200, `frame of ${frame.length} bytes`);
  const decoded = decodeFrame(frame, { weights: memory }) as { values: Float32Array; weightsVersion: number };
  assertEquals([decoded.weightsVersion, Array.from(decoded.values)], [3, Array.from(grads)]);
  assert(decoded.values.buffer === memory.buffer && decoded.values.byteOffset === 64, "a view, not a copy");
  assertThrows(() => decodeFrame(frame), GantryError, 'shared region "weights", not mapped here');
  assertThrows(
    () => decodeFrame(frame, { weights: memory.subarray(0, 100) }),
    GantryError,
    "overruns shared region",
  );
  assertThrows(
    () =>
      encodeMessage(message, undefined, undefined, { region: "weights", memory, offsets: { values: 128 } }),
    RangeError,
    "overruns its target",
  );
});

Deno.test("a task's tensors go to the first placement that names them: tensors to one region, weights in place", () => {
  const task = new Uint8Array(1024);
  const weights = new Uint8Array(4096);
  const values = new Float32Array(weights.buffer, 512, 100).map((_, i) => i * 0.5);
  const message: Message = {
    type: "task",
    version: PROTOCOL_VERSION,
    step: 3,
    phase: "G",
    generatorVersion: 2,
    discriminatorVersion: 2,
    count: 4,
    z: Float32Array.from({ length: 8 }, (_, i) => i),
    labels: new Uint8Array([1, 2, 3, 4]),
    generator: values,
  };
  const frame = encodeMessage(message, undefined, undefined, [
    { region: "task", memory: task, offsets: { z: 0, labels: 64 } },
    { region: "weights", memory: weights, offsets: { generator: 512, z: 1024 } },
  ]);
  assert(frame.length < 300, `frame of ${frame.length} bytes`);
  const decoded = decodeFrame(frame, { task, weights }) as typeof message;
  assertEquals(Array.from(decoded.z), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert(decoded.z.buffer === task.buffer, "z went to the first placement naming it");
  assert(decoded.generator!.buffer === weights.buffer && decoded.generator!.byteOffset === 512);
  assertEquals(Array.from(decoded.generator!), Array.from(values));
});
