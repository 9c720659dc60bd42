import { assert, assertEquals } from "./testing.ts";
import { Rng } from "./rng.ts";

Deno.test("fillNormal() draws standard normals: mean 0, variance 1, both halves of each pair alike", () => {
  const values = new Rng(3).fillNormal(new Float32Array(200_001));
  for (const parity of [0, 1]) {
    const half = values.filter((_, i) => i % 2 === parity);
    const mean = half.reduce((a, b) => a + b, 0) / half.length;
    const variance = half.reduce((a, b) => a + (b - mean) ** 2, 0) / half.length;
    assert(Math.abs(mean) < 0.01 && Math.abs(variance - 1) < 0.02, `parity ${parity}: ${mean}, ${variance}`);
  }
  const within1 = values.filter((v) => Math.abs(v) < 1).length / values.length;
  assert(Math.abs(within1 - 0.6827) < 0.005, `P(|z| < 1) = ${within1}`);
});

Deno.test("an Rng restored from state() draws the same values, whatever was drawn before", () => {
  const a = new Rng(11);
  a.fillNormal(new Float32Array(7));
  const b = new Rng(a.state());
  assertEquals(Array.from(a.fillNormal(new Float32Array(9))), Array.from(b.fillNormal(new Float32Array(9))));
});
