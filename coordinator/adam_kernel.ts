/**
 * The coordinator's per-parameter loops (Adam's update, the gradient sum) as hand-assembled WebAssembly SIMD
 * functions (f32x4). Adam runs about 4x faster than the same loop in JavaScript (measured here: 3.8 ms
 * against 15 ms for 2.44 M weights on one core): V8 turns the JS loop's float32 reads into float64
 * arithmetic with one scalar sqrt and divide per weight; this computes four weights per instruction in
 * float32, as Keras's Adam does.
 *
 * The module imports its memory, so that every Adam instance keeps its weights, moments and gradient in
 * one memory of its own and JavaScript reads and writes them through views without copying.
 *
 * adam(pIn, g, mIn, vIn, pOut, mOut, vOut, bytes, beta1, 1-beta1, beta2, 1-beta2, lrT, epsilon):
 *   m = beta1 m + (1-beta1) g;  v = beta2 v + (1-beta2) g²;  p -= lrT m / (sqrt(v) + epsilon)
 * over `bytes` bytes (a multiple of 16) of every array; outputs may alias inputs.
 */

const I32 = 0x7f, F32 = 0x7d, V128 = 0x7b;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    const low = n & 0x7f;
    n >>>= 7;
    out.push(n ? low | 0x80 : low);
  } while (n);
  return out;
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function name(text: string): number[] {
  const bytes = [...new TextEncoder().encode(text)];
  return [...uleb(bytes.length), ...bytes];
}

/** Parameter indices of the function, then its locals. */
const [P_IN, G, M_IN, V_IN, P_OUT, M_OUT, V_OUT, BYTES] = [0, 1, 2, 3, 4, 5, 6, 7];
const FIRST_SCALAR = 8; // beta1, c1, beta2, c2, lrT, epsilon: 8..13, splatted into locals 15..20
const SCALARS = 6;
const I = 14, FIRST_SPLAT = 15, GRAD = 21, MOMENT = 22, VARIANCE = 23;

const get = (i: number) => [0x20, ...uleb(i)];
const set = (i: number) => [0x21, ...uleb(i)];
const tee = (i: number) => [0x22, ...uleb(i)];
const simd = (op: number) => [0xfd, ...uleb(op)];
const load = [...simd(0x00), 4, 0]; // v128.load align=16 offset=0
const store = [...simd(0x0b), 4, 0];
const [splat, fAdd, fSub, fMul, fDiv, fSqrt] = [0x13, 0xe4, 0xe5, 0xe6, 0xe7, 0xe3].map(simd);
const [fNe, vOr, anyTrue] = [0x42, 0x50, 0x53].map(simd);
const I32_ADD = [0x6a], I32_GE_U = [0x4f];
/** address = base + index, both locals */
const address = (base: number, index: number) => [...get(base), ...get(index), ...I32_ADD];
const at = (base: number) => address(base, I);
const splatted = (k: number) => get(FIRST_SPLAT + k);

function adamBody(): number[] {
  const code: number[] = [];
  for (let k = 0; k < SCALARS; k++) code.push(...get(FIRST_SCALAR + k), ...splat, ...set(FIRST_SPLAT + k));
  code.push(0x02, 0x40, 0x03, 0x40); // block, loop
  code.push(...get(I), ...get(BYTES), ...I32_GE_U, 0x0d, 1); // br_if out of the block when i >= bytes
  code.push(...at(G), ...load, ...set(GRAD));
  // m
  code.push(
    ...at(M_OUT),
    ...splatted(0),
    ...at(M_IN),
    ...load,
    ...fMul,
    ...splatted(1),
    ...get(GRAD),
    ...fMul,
  );
  code.push(...fAdd, ...tee(MOMENT), ...store);
  // v
  code.push(...at(V_OUT), ...splatted(2), ...at(V_IN), ...load, ...fMul, ...splatted(3), ...get(GRAD));
  code.push(...get(GRAD), ...fMul, ...fMul, ...fAdd, ...tee(VARIANCE), ...store);
  // p
  code.push(...at(P_OUT), ...at(P_IN), ...load, ...splatted(4), ...get(MOMENT), ...fMul);
  code.push(...get(VARIANCE), ...fSqrt, ...splatted(5), ...fAdd, ...fDiv, ...fSub, ...store);
  code.push(...get(I), 0x41, 16, ...I32_ADD, ...set(I)); // i += 16
  code.push(0x0c, 0, 0x0b, 0x0b, 0x0b); // br loop; end loop; end block; end function
  const locals = vec([[...uleb(1), I32], [...uleb(SCALARS + 3), V128]]);
  return [...locals, ...code];
}

/**
 * scaleInto(out, in, bytes, s): out = in * s;  addScaled(out, in, bytes, s): out += in * s. The gradient
 * sum, four floats at a time (V8's loop over shared-memory views ran at about 1.6 ns per float). Both
 * return 1 when `in` holds a NaN or an infinity (x - x is then NaN), checked in the same pass.
 */
function sumBody(accumulate: boolean): number[] {
  const [OUT, IN, N, SCALE, J, S, X, D, BAD] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const addr = (base: number) => address(base, J);
  const code = [...get(SCALE), ...splat, ...set(S), 0x02, 0x40, 0x03, 0x40];
  code.push(...get(J), ...get(N), ...I32_GE_U, 0x0d, 1);
  code.push(...addr(OUT), ...addr(IN), ...load, ...tee(X), ...get(S), ...fMul);
  if (accumulate) code.push(...addr(OUT), ...load, ...fAdd);
  code.push(...store);
  code.push(...get(BAD), ...get(X), ...get(X), ...fSub, ...tee(D), ...get(D), ...fNe, ...vOr, ...set(BAD));
  code.push(...get(J), 0x41, 16, ...I32_ADD, ...set(J), 0x0c, 0, 0x0b, 0x0b);
  code.push(...get(BAD), ...anyTrue, 0x0b);
  return [...vec([[...uleb(1), I32], [...uleb(4), V128]]), ...code];
}

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const adamParams = [...Array(FIRST_SCALAR).fill(I32), ...Array(SCALARS).fill(F32)].map((t) => [t]);
  const adamType = [0x60, ...vec(adamParams), ...vec([])];
  const sumType = [0x60, ...vec([[I32], [I32], [I32], [F32]]), ...vec([[I32]])];
  const bodies = [adamBody(), sumBody(false), sumBody(true)];
  const exports = ["adam", "scaleInto", "addScaled"].map((e, i) => [...name(e), 0x00, ...uleb(i)]);
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec([adamType, sumType])),
    ...section(2, vec([[...name("env"), ...name("memory"), 0x02, 0x00, ...uleb(0)]])),
    ...section(3, vec([uleb(0), uleb(1), uleb(1)])),
    ...section(7, vec(exports)),
    ...section(10, vec(bodies.map((body) => [...uleb(body.length), ...body]))),
  ]);
}

export type AdamKernel = (
  pIn: number,
  g: number,
  mIn: number,
  vIn: number,
  pOut: number,
  mOut: number,
  vOut: number,
  bytes: number,
  beta1: number,
  c1: number,
  beta2: number,
  c2: number,
  lrT: number,
  epsilon: number,
) => void;

/**
 * out = in * scale, or out += in * scale: byte addresses, `bytes` a multiple of 16. Returns 1 when `in`
 * holds a value that is not finite.
 */
export type SumKernel = (out: number, input: number, bytes: number, scale: number) => number;

export interface OptimizerKernels {
  adam: AdamKernel;
  scaleInto: SumKernel;
  addScaled: SumKernel;
}

let compiled: WebAssembly.Module | undefined;

/** The kernels bound to `memory`; the module is compiled once per process. */
export function optimizerKernels(memory: WebAssembly.Memory): OptimizerKernels {
  compiled ??= new WebAssembly.Module(moduleBytes());
  const instance = new WebAssembly.Instance(compiled, { env: { memory } });
  return instance.exports as unknown as OptimizerKernels;
}
