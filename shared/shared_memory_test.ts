import { assert, assertEquals, assertThrows } from "../shared/testing.ts";
import {
  isSegmentName,
  probeMatches,
  segmentName,
  sharedMemorySupport,
  SharedSegment,
  sweepStaleSegments,
  unlinkSegment,
  writeProbe,
} from "./shared_memory.ts";

Deno.test("a shared segment written through one mapping is read through another, and its name goes away", () => {
  assertEquals(sharedMemorySupport(), null);
  const name = segmentName("test");
  const size = 1 << 20;
  const writer = SharedSegment.create(name, size);
  try {
    const reader = SharedSegment.open(name, size);
    const values = new Float32Array(writer.bytes.buffer, 0, size / 4);
    values.set([1.5, -2.25], 0);
    values[values.length - 1] = 3.75;
    const seen = new Float32Array(reader.bytes.buffer, 0, size / 4);
    assertEquals([seen[0], seen[1], seen[seen.length - 1]], [1.5, -2.25, 3.75]);
    reader.close();
    reader.close(); // twice is harmless
  } finally {
    writer.close();
    unlinkSegment(name);
  }
  assertThrows(() => SharedSegment.open(name, size), Error, "No such file or directory");
});

Deno.test("opening a segment smaller than expected is refused, not mapped (reading past it would crash)", () => {
  const name = segmentName("test");
  const small = SharedSegment.create(name, 4096);
  try {
    assertThrows(() => SharedSegment.open(name, 8192), Error, "holds 4096 bytes, not the 8192 expected");
    assertThrows(() => SharedSegment.create(name, 4096), Error, "File exists");
  } finally {
    small.close();
    unlinkSegment(name);
  }
});

Deno.test("a probe matches its own nonce only, and only names of gantry's shape are looked at", () => {
  const probe = writeProbe();
  try {
    assert(isSegmentName(probe.name), probe.name);
    assert(probeMatches(probe.name, probe.nonce));
    assert(!probeMatches(probe.name, "0".repeat(32)));
  } finally {
    unlinkSegment(probe.name);
  }
  assert(!probeMatches(probe.name, probe.nonce), "an unlinked probe matches nothing");
  for (const name of ["/etc", "/gantry-probe-1-../../x", "gantry-probe-1-0011223344556677", "/dev/shm/x"]) {
    assert(!isSegmentName(name), name);
  }
});

Deno.test("a closed segment's views read zeros rather than crash", () => {
  const name = segmentName("test");
  const segment = SharedSegment.create(name, 4096);
  unlinkSegment(name);
  segment.bytes.fill(7);
  segment.close();
  assertEquals([segment.bytes[0], segment.bytes[4095]], [0, 0]);
});

Deno.test("segments of processes that are gone are swept; those of live ones stay", () => {
  const live = segmentName("test");
  // No process has a pid this large (Linux's limit is 2^22).
  const stale = `/gantry-test-999999999-${"ab".repeat(8)}`;
  const segments = [SharedSegment.create(live, 4096), SharedSegment.create(stale, 4096)];
  try {
    const swept = sweepStaleSegments();
    assert(swept.includes(stale), `swept: ${swept.join(", ")}`);
    assert(!swept.includes(live));
    assertThrows(() => SharedSegment.open(stale, 4096), Error, "No such file");
    SharedSegment.open(live, 4096).close();
  } finally {
    for (const s of segments) s.close();
    unlinkSegment(live);
    unlinkSegment(stale);
  }
});

/** Private mount namespaces need root: where `unshare -m` is refused, the next test cannot run. */
const canUnshare = (() => {
  try {
    return new Deno.Command("unshare", { args: ["-m", "true"], stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "a /dev/shm too small for a segment refuses it with a clear error, instead of a SIGBUS later",
  ignore: !canUnshare,
  fn() {
    const module = new URL("./shared_memory.ts", import.meta.url).href;
    const script = `import { SharedSegment, segmentName } from "${module}";
      try { SharedSegment.create(segmentName("test"), 16 << 20); console.log("created"); }
      catch (e) { console.log(e.message); }
      console.log(SharedSegment.create(segmentName("test"), 1 << 20).bytes.length);`;
    // An 8 MB /dev/shm of its own, as small as Docker's 64 MB default is for big models.
    const { stdout, success } = new Deno.Command("unshare", {
      args: [
        "-m",
        "sh",
        "-c",
        `mount -t tmpfs -o size=8m tmpfs /dev/shm && "${Deno.execPath()}" eval '${script}'`,
      ],
    }).outputSync();
    const out = new TextDecoder().decode(stdout);
    assert(success, out);
    assert(/no room for 16777216 bytes in \/dev\/shm \(No space left on device\)/.test(out), out);
    assert(out.trim().endsWith("1048576"), out);
  },
});

Deno.test("a read-only mapping reads the segment, and a write through it faults in that process only", async () => {
  const name = segmentName("test");
  const writer = SharedSegment.create(name, 4096);
  try {
    writer.bytes[7] = 42;
    const script = `
      import { SharedSegment } from ${JSON.stringify(new URL("./shared_memory.ts", import.meta.url).href)};
      const view = SharedSegment.openReadOnly(${JSON.stringify(name)}, 4096).bytes;
      console.log("read", view[7]);
      view[7] = 1;
      console.log("wrote");`;
    const { code, signal, stdout } = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", "--allow-ffi", script],
      stdout: "piped",
      stderr: "null",
    }).output();
    assertEquals(new TextDecoder().decode(stdout), "read 42\n");
    assert(signal === "SIGSEGV" || signal === "SIGBUS" || code === 139, `exit ${code} ${signal}`);
    assertEquals(writer.bytes[7], 42);
  } finally {
    writer.close();
    unlinkSegment(name);
  }
});
