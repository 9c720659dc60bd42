import { assertClose, assertEquals } from "../shared/testing.ts";
import { Adam } from "./adam.ts";
import { KernelMemory } from "./kernel_memory.ts";

Deno.test("Adam.apply() matches the textbook update with bias correction over three steps", () => {
  const settings = { lr: 0.01, beta1: 0.5, beta2: 0.999, epsilon: 1e-7 };
  const adam = new Adam(2, settings);
  const p = new Float32Array([1, -2]);
  const grads = [[0.5, -1], [0.25, 2], [-1, 0.1]];
  let m = [0, 0], v = [0, 0];
  const expected = [1, -2];
  for (let t = 1; t <= grads.length; t++) {
    const g = grads[t - 1];
    adam.apply(p, new Float32Array(g));
    m = m.map((mi, i) => settings.beta1 * mi + (1 - settings.beta1) * g[i]);
    v = v.map((vi, i) => settings.beta2 * vi + (1 - settings.beta2) * g[i] * g[i]);
    const lrT = settings.lr * Math.sqrt(1 - settings.beta2 ** t) / (1 - settings.beta1 ** t);
    for (let i = 0; i < 2; i++) expected[i] -= lrT * m[i] / (Math.sqrt(v[i]) + settings.epsilon);
  }
  assertClose(p, expected, 1e-6, "params");
  assertEquals(adam.step, 3);
});

Deno.test("Adam's first step moves every weight by about lr whatever the gradient's size", () => {
  const adam = new Adam(3, { lr: 2e-4, beta1: 0.5, beta2: 0.999, epsilon: 1e-7 });
  const p = new Float32Array(3);
  adam.apply(p, new Float32Array([0.1, -50, 3]));
  assertClose(p, [-2e-4, 2e-4, -2e-4], 1e-7, "first step");
});

Deno.test("Adam.restore() continues exactly where state() left off", () => {
  const settings = { lr: 1e-3, beta1: 0.9, beta2: 0.99, epsilon: 1e-7 };
  const a = new Adam(4, settings);
  const pa = new Float32Array([1, 2, 3, 4]);
  a.apply(pa, new Float32Array([1, -1, 0.5, 0]));
  const b = new Adam(4, settings);
  b.restore(a.state());
  const pb = pa.slice();
  const g = new Float32Array([0.3, 0.2, -0.1, 1]);
  a.apply(pa, g);
  b.apply(pb, g);
  assertEquals(Array.from(pb), Array.from(pa));
});

Deno.test("Adam.stage() changes nothing until commit(); discard() leaves the optimizer as it was", () => {
  const settings = { lr: 0.01, beta1: 0.5, beta2: 0.999, epsilon: 1e-7 };
  const staged = new Adam(2, settings);
  const direct = new Adam(2, settings);
  const p = new Float32Array([1, -2]);
  const q = p.slice();
  const out = new Float32Array(2);
  staged.stage(p, new Float32Array([9, 9]), out);
  staged.discard();
  assertEquals([staged.step, [...staged.m], [...p]], [0, [0, 0], [1, -2]]);
  staged.stage(p, new Float32Array([0.5, -1]), out);
  assertEquals(staged.step, 0);
  staged.commit();
  direct.apply(q, new Float32Array([0.5, -1]));
  assertEquals([staged.step, [...out], [...staged.m], [...staged.v]], [1, [...q], [...direct.m], [
    ...direct.v,
  ]]);
});

/** Adam in float64 JavaScript, the reference for the float32 SIMD kernel. */
function referenceAdam(
  p: number[],
  grads: number[][],
  s: { lr: number; beta1: number; beta2: number; epsilon: number },
) {
  const m = p.map(() => 0), v = p.map(() => 0);
  grads.forEach((g, step) => {
    const t = step + 1;
    const lrT = s.lr * Math.sqrt(1 - s.beta2 ** t) / (1 - s.beta1 ** t);
    for (let i = 0; i < p.length; i++) {
      m[i] = s.beta1 * m[i] + (1 - s.beta1) * g[i];
      v[i] = s.beta2 * v[i] + (1 - s.beta2) * g[i] * g[i];
      p[i] -= lrT * m[i] / (Math.sqrt(v[i]) + s.epsilon);
    }
  });
  return { p, m, v };
}

Deno.test("Adam's SIMD kernel matches float64 Adam on sizes that are not whole vectors, in place or not", () => {
  const settings = { lr: 2e-4, beta1: 0.5, beta2: 0.999, epsilon: 1e-7 };
  for (const size of [1, 3, 5, 1001]) {
    const rng = (i: number, k: number) => Math.sin(i * 12.9898 + k * 78.233) * 3;
    const grads = [0, 1, 2].map((k) => Array.from({ length: size }, (_, i) => rng(i, k)));
    const start = Array.from({ length: size }, (_, i) => rng(i, 9));
    const expected = referenceAdam(start.slice(), grads, settings);
    const foreign = new Adam(size, settings);
    const p = new Float32Array(start);
    const inside = new Adam(size, settings);
    const q = inside.buffer(new Float32Array(start));
    const gradient = inside.buffer();
    for (const g of grads) {
      foreign.apply(p, new Float32Array(g));
      gradient.set(g);
      inside.apply(q, gradient);
    }
    assertClose(p, expected.p, 1e-6, `params, size ${size}`);
    assertClose(foreign.m, expected.m, 1e-5, `m, size ${size}`);
    assertClose(foreign.v, expected.v, 1e-5, `v, size ${size}`);
    assertEquals(Array.from(q), Array.from(p), `buffers in Adam's memory give the same result, size ${size}`);
  }
});

Deno.test("Adam.buffer() hands out as many arrays as it was built for, then says so", () => {
  const adam = new Adam(10, { lr: 1e-3, beta1: 0.9, beta2: 0.99, epsilon: 1e-7 }, undefined, 2);
  const a = adam.buffer(new Float32Array(10).fill(2));
  const b = adam.buffer();
  a[9] = 5;
  assertEquals([a[0], a[9], b[0], b.length], [2, 5, 0, 10]);
  let message = "";
  try {
    adam.buffer();
  } catch (e) {
    message = (e as Error).message;
  }
  assertEquals(message.startsWith("KernelMemory: no room for 10 more floats"), true, message);
});

Deno.test("stageSum: the one-pass sum and update give the bits of sumInto then stage, for 1 to 5 inputs", () => {
  const size = 1003;
  const settings = { lr: 2e-4, beta1: 0.5, beta2: 0.999, epsilon: 1e-7 };
  for (let k = 1; k <= 5; k++) {
    const runs = [false, true].map((fused) => {
      const memory = new KernelMemory(new Array(Adam.REGIONS + 3 + k).fill(size));
      const adam = new Adam(size, settings, memory);
      const [params, out, gradient] = [0, 1, 2].map(() => memory.floats(size));
      const inputs = Array.from({ length: k }, (_, j) => {
        const x = memory.floats(size);
        for (let i = 0; i < size; i++) x[i] = Math.sin(i * (j + 1)) * 10 ** (j - 2);
        return x;
      });
      for (let i = 0; i < size; i++) params[i] = Math.cos(i);
      const scales = inputs.map((_, j) => 1 / (3 + j));
      for (let step = 0; step < 3; step++) {
        if (fused) assertEquals(adam.stageSum(params, inputs, scales, out, gradient), -1);
        else {
          assertEquals(adam.sumInto(gradient, inputs, scales), -1);
          adam.stage(params, gradient, out);
        }
        adam.commit();
        params.set(out);
      }
      return { params: params.slice(), m: adam.m.slice(), v: adam.v.slice() };
    });
    assertEquals(runs[1], runs[0], `${k} inputs`);
  }
});

Deno.test("stageSum names the first input holding a NaN or an infinity, and stages nothing", () => {
  const size = 64;
  const memory = new KernelMemory(new Array(Adam.REGIONS + 6).fill(size));
  const adam = new Adam(size, { lr: 1e-3, beta1: 0.9, beta2: 0.99, epsilon: 1e-7 }, memory);
  const [params, out, gradient] = [0, 1, 2].map(() => memory.floats(size));
  const inputs = [0, 1, 2].map(() => memory.floats(size).fill(0.5));
  inputs[2][7] = Infinity;
  inputs[1][63] = NaN;
  assertEquals(adam.stageSum(params, inputs, [1, 1, 1], out, gradient), 1);
  assertEquals(adam.staged, false);
  inputs[1][63] = 0;
  assertEquals(adam.stageSum(params, inputs, [1, 1, 1], out, gradient), 2);
  inputs[2][7] = 0;
  assertEquals(adam.stageSum(params, inputs, [1, 1, 1], out, gradient), -1);
  assertEquals(adam.staged, true);
});
