/** Test support: tiny IDX files built in memory, so the reader's tests need no data on disk. */

/** An IDX file: big-endian magic, big-endian dims, then `payload` as uint8s. */
export function idxBytes(magic: number, dims: number[], payload: ArrayLike<number>): Uint8Array {
  const bytes = new Uint8Array(4 + 4 * dims.length + payload.length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, magic);
  dims.forEach((dim, i) => view.setUint32(4 + 4 * i, dim));
  bytes.set(payload, 4 + 4 * dims.length);
  return bytes;
}

export async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A folder of IDX files for one split: `count` images whose pixels all equal their label. */
export async function writeSplit(
  dir: string,
  opts: {
    stem?: string;
    count: number;
    labels?: number[];
    labelCount?: number;
    size?: number;
    gzipped?: boolean;
    dotNames?: boolean;
  },
): Promise<void> {
  const { count, stem = "train", size = 28, gzipped = false, dotNames = false } = opts;
  const labels = opts.labels ?? Array.from({ length: opts.labelCount ?? count }, (_, i) => i % 10);
  const pixels = new Uint8Array(count * size * size);
  for (let i = 0; i < count; i++) pixels.fill(labels[i] ?? 0, i * size * size, (i + 1) * size * size);
  const sep = dotNames ? "." : "-";
  const files: [string, Uint8Array][] = [
    [`${stem}-images${sep}idx3-ubyte`, idxBytes(0x0803, [count, size, size], pixels)],
    [`${stem}-labels${sep}idx1-ubyte`, idxBytes(0x0801, [labels.length], labels)],
  ];
  for (const [name, bytes] of files) {
    if (gzipped) await Deno.writeFile(`${dir}/${name}.gz`, await gzip(bytes));
    else await Deno.writeFile(`${dir}/${name}`, bytes);
  }
}
