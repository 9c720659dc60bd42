import { assert, assertEquals } from "./testing.ts";
import { Rng } from "./rng.ts";

Deno.test("fillNormal() draws standard normals: moments, quantiles and tails, odd and even places alike", () => {
  const values = new Rng(3).fillNormal(new Float32Array(2_000_001));
  for (const parity of [0, 1]) {
    const half = values.filter((_, i) => i % 2 === parity);
    const mean = half.reduce((a, b) => a + b, 0) / half.length;
    const variance = half.reduce((a, b) => a + (b - mean) ** 2, 0) / half.length;
    const kurtosis = half.reduce((a, b) => a + (b - mean) ** 4, 0) / half.length / variance ** 2;
    assert(
      Math.abs(mean) < 0.003 && Math.abs(variance - 1) < 0.005,
      `parity ${parity}: ${mean}, ${variance}`,
    );
    assert(Math.abs(kurtosis - 3) < 0.03, `parity ${parity}: kurtosis ${kurtosis}`);
  }
  // Standard normal CDF values: P(z < x); the last two are past the ziggurat's base strip (r = 3.4426).
  const cdf: Array<[number, number]> = [
    [-3.5, 0.000233],
    [-2, 0.02275],
    [-1, 0.158655],
    [-0.5, 0.308538],
    [0, 0.5],
    [
      0.5,
      0.691462,
    ],
    [1, 0.841345],
    [2, 0.97725],
    [3.5, 0.999767],
  ];
  for (const [x, p] of cdf) {
    const seen = values.filter((v) => v < x).length / values.length;
    const sd = Math.sqrt((p * (1 - p)) / values.length);
    assert(Math.abs(seen - p) < 5 * sd + 1e-5, `P(z < ${x}) = ${seen}, expected ${p}`);
  }
  assert(values.every(Number.isFinite));
});

Deno.test("an Rng restored from state() draws the same values, whatever was drawn before", () => {
  const a = new Rng(11);
  a.fillNormal(new Float32Array(7));
  const b = new Rng(a.state());
  assertEquals(Array.from(a.fillNormal(new Float32Array(9))), Array.from(b.fillNormal(new Float32Array(9))));
});

Deno.test("fillNormal()'s inlined generator is nextUint32(): a normal from the fast path uses one draw", () => {
  const a = new Rng(21);
  let same = 0;
  for (let i = 0; i < 200; i++) {
    const b = new Rng(a.state());
    a.fillNormal(new Float32Array(1));
    b.nextUint32();
    if (a.state().map((v) => v >>> 0).join() === b.state().map((v) => v >>> 0).join()) same++;
  }
  // About 1% of draws take the slow path, which draws more.
  assert(same >= 190, `${same} of 200 normals used exactly one draw`);
});
