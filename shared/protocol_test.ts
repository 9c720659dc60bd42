import { assertEquals, assertThrows } from "./testing.ts";
import { GantryError } from "./errors.ts";
import {
  type ExpectedSizes,
  PROTOCOL_VERSION,
  validateFromCoordinator,
  validateFromWorker,
} from "./protocol.ts";

const SIZES: ExpectedSizes = {
  latentDim: 3,
  generatorSize: 5,
  discriminatorSize: 4,
  batchNormSize: 2,
  imageSize: 784,
};

function result(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: "result",
    version: PROTOCOL_VERSION,
    step: 2,
    phase: "D",
    count: 2,
    grads: new Float32Array(4),
    lossSum: 1.5,
    realScoreSum: 1,
    fakeScoreSum: 0.5,
    computeMs: 3,
    ...overrides,
  };
}

function code(fn: () => unknown): string {
  return assertThrows(fn, GantryError).code;
}

Deno.test("validateFromWorker() accepts a well-formed result", () => {
  assertEquals(validateFromWorker(result(), SIZES).type, "result");
  const g = result({ phase: "G", grads: new Float32Array(5), batchNormSums: new Float32Array(2) });
  assertEquals(validateFromWorker(g, SIZES).type, "result");
});

Deno.test("validateFromWorker() names both protocol versions when they differ", () => {
  const error = assertThrows(() => validateFromWorker(result({ version: 99 }), SIZES), GantryError);
  assertEquals(error.code, "E_PROTOCOL_VERSION");
  assertEquals(error.message.includes("99") && error.message.includes(`version ${PROTOCOL_VERSION}`), true);
});

Deno.test("validateFromWorker() rejects wrong shapes, NaN gradients, bad fields and illegal types", () => {
  assertEquals(
    code(() => validateFromWorker(result({ grads: new Float32Array(3) }), SIZES)),
    "E_BAD_MESSAGE",
  );
  assertEquals(code(() => validateFromWorker(result({ grads: [0, 0, 0, 0] }), SIZES)), "E_BAD_MESSAGE");
  assertEquals(
    code(() => validateFromWorker(result({ grads: new Float32Array([0, NaN, 0, 0]) }), SIZES)),
    "E_BAD_VALUES",
  );
  assertEquals(
    code(() => validateFromWorker(result({ grads: new Float32Array([0, 0, Infinity, 0]) }), SIZES)),
    "E_BAD_VALUES",
  );
  assertEquals(code(() => validateFromWorker(result({ lossSum: NaN }), SIZES)), "E_BAD_MESSAGE");
  assertEquals(code(() => validateFromWorker(result({ step: 0 }), SIZES)), "E_BAD_MESSAGE");
  assertEquals(code(() => validateFromWorker(result({ phase: "X" }), SIZES)), "E_BAD_MESSAGE");
  assertEquals(
    code(() => validateFromWorker(result({ phase: "G", grads: new Float32Array(5) }), SIZES)),
    "E_BAD_MESSAGE",
  );
  assertEquals(code(() => validateFromWorker(result({ type: "task" }), SIZES)), "E_BAD_MESSAGE");
  assertEquals(code(() => validateFromWorker(result({ type: "bogus" }), SIZES)), "E_BAD_MESSAGE");
  assertEquals(code(() => validateFromWorker("hello", SIZES)), "E_BAD_MESSAGE");
  assertEquals(code(() => validateFromWorker(null, SIZES)), "E_BAD_MESSAGE");
});

Deno.test("validateFromCoordinator() checks a task's arrays against the model and its labels against 0..9", () => {
  const task = {
    type: "task",
    version: PROTOCOL_VERSION,
    step: 1,
    phase: "G",
    generatorVersion: 0,
    discriminatorVersion: 1,
    count: 2,
    z: new Float32Array(6),
    labels: new Uint8Array([3, 9]),
  };
  assertEquals(validateFromCoordinator(task, SIZES).type, "task");
  assertEquals(code(() => validateFromCoordinator(task, null)), "E_BAD_MESSAGE");
  assertEquals(
    code(() => validateFromCoordinator({ ...task, labels: new Uint8Array([3, 10]) }, SIZES)),
    "E_BAD_MESSAGE",
  );
  assertEquals(
    code(() => validateFromCoordinator({ ...task, z: new Float32Array(5) }, SIZES)),
    "E_BAD_MESSAGE",
  );
  assertEquals(code(() => validateFromCoordinator({ ...task, phase: "D" }, SIZES)), "E_BAD_MESSAGE");
  assertEquals(
    code(() => validateFromCoordinator({ ...task, generator: new Float32Array(4) }, SIZES)),
    "E_BAD_MESSAGE",
  );
});
