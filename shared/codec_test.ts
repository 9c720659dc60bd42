import { assertEquals, assertThrows } from "./testing.ts";
import { decodeFrame, encodeMessage } from "./codec.ts";
import type { TaskMessage } from "./protocol.ts";
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
