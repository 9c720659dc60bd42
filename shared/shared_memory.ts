/**
 * POSIX shared memory (shm_open + mmap, through Deno's FFI), so that a coordinator and the workers on its
 * own machine pass gradients and weights by writing them where the other side reads them, instead of
 * pushing megabytes through a socket. The socket still carries every message; only the big tensors move.
 *
 * Linux only (glibc's libc.so.6, or librt.so.1 before glibc 2.34); elsewhere, or without --allow-ffi,
 * `sharedMemorySupport()` says why not and the socket carries everything as before.
 */
const O_RDONLY = 0, O_RDWR = 2, O_CREAT = 0o100, O_EXCL = 0o200;
const PROT_READ = 1, PROT_WRITE = 2, MAP_SHARED = 1, MAP_PRIVATE = 2, MAP_FIXED = 0x10, MAP_ANONYMOUS = 0x20;
const SEEK_END = 2, ESRCH = 3;
/** Where glibc's shm_open keeps its names, and where a `struct dirent`'s name starts (x86_64, aarch64). */
const SHM_DIRECTORY = "/dev/shm";
const DIRENT_NAME_OFFSET = 19;
const OWNER_ONLY = 0o600;
/** The largest page size of Linux's platforms (64 KiB on some aarch64): fixed mappings are whole ones. */
export const MAX_PAGE_BYTES = 65536;
/** What a probe segment holds: a nonce, proving that both processes see the same /dev/shm. */
const PROBE_BYTES = 16;

const SYMBOLS = {
  shm_open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  shm_unlink: { parameters: ["buffer"], result: "i32" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  posix_fallocate: { parameters: ["i32", "i64", "i64"], result: "i32" },
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  kill: { parameters: ["i32", "i32"], result: "i32" },
  opendir: { parameters: ["buffer"], result: "pointer" },
  readdir: { parameters: ["pointer"], result: "pointer" },
  closedir: { parameters: ["pointer"], result: "i32" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let libc: Libc | undefined;
let unsupported: string | null | undefined;

/** null when shared memory works here; otherwise why not (for the log). */
export function sharedMemorySupport(): string | null {
  if (unsupported !== undefined) return unsupported;
  if (Deno.build.os !== "linux") {
    return unsupported = `shared memory is implemented for Linux, not ${Deno.build.os}`;
  }
  const errors: string[] = [];
  for (const path of ["libc.so.6", "librt.so.1"]) {
    try {
      libc = Deno.dlopen(path, SYMBOLS).symbols;
      return unsupported = null;
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
        return unsupported = "shared memory needs --allow-ffi";
      }
      errors.push(`${path}: ${(error as Error).message}`);
    }
  }
  return unsupported = `no shm_open in ${errors.join("; ")}`;
}

function lib(): Libc {
  const why = sharedMemorySupport();
  if (why) throw new Error(why);
  return libc!;
}

function cName(name: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(`${name}\0`);
}

function errno(): number {
  return new Deno.UnsafePointerView(lib().__errno_location()!).getInt32();
}

function failure(call: string, name: string): Error {
  const code = errno();
  const text = Deno.UnsafePointerView.getCString(lib().strerror(code)!);
  return new Error(`shared memory ${name}: ${call} failed: ${text} (errno ${code})`);
}

/** A named segment mapped into this process; `bytes` is valid until close(). */
export class SharedSegment {
  readonly name: string;
  readonly bytes: Uint8Array;
  #pointer: Deno.PointerObject | null;

  private constructor(name: string, pointer: Deno.PointerObject, size: number) {
    this.name = name;
    this.#pointer = pointer;
    this.bytes = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(pointer, size));
  }

  /**
   * Creates `name` (which must not exist) of `size` zero bytes, readable and writable by this user only.
   * `at`: map it over these pages of this process instead of at a fresh address (see `open`).
   */
  static create(name: string, size: number, at?: Deno.PointerObject): SharedSegment {
    const c = lib();
    const fd = c.shm_open(cName(name), O_RDWR | O_CREAT | O_EXCL, OWNER_ONLY);
    if (fd < 0) throw failure("shm_open", name);
    try {
      if (c.ftruncate(fd, BigInt(size)) !== 0) throw failure("ftruncate", name);
      // Reserve the pages now: a tmpfs too small for them (Docker gives /dev/shm 64 MB) would otherwise
      // kill the process with SIGBUS at the first write past its room, instead of failing here.
      const code = c.posix_fallocate(fd, 0n, BigInt(size));
      if (code !== 0) {
        const text = Deno.UnsafePointerView.getCString(c.strerror(code)!);
        throw new Error(`shared memory ${name}: no room for ${size} bytes in /dev/shm (${text})`);
      }
      return SharedSegment.#map(c, fd, name, size, at);
    } catch (error) {
      c.shm_unlink(cName(name));
      throw error;
    } finally {
      c.close(fd);
    }
  }

  /**
   * Maps an existing segment, which must hold at least `size` bytes (reading past its end would crash).
   * `at`: over these pages of this process (MAP_FIXED), which then show the segment until close(); the
   * coordinator maps segments into its kernels' WebAssembly memory this way, so they work on them in place.
   * `at` and `size` must be whole pages.
   */
  static open(name: string, size: number, at?: Deno.PointerObject): SharedSegment {
    return SharedSegment.#open(name, size, true, at);
  }

  /**
   * Maps an existing segment for reading only: a worker's view of the coordinator's master weights, which
   * no worker may change (a write through it would fault in the worker, not corrupt the training).
   */
  static openReadOnly(name: string, size: number): SharedSegment {
    return SharedSegment.#open(name, size, false);
  }

  static #open(name: string, size: number, writable: boolean, at?: Deno.PointerObject): SharedSegment {
    const c = lib();
    const fd = c.shm_open(cName(name), writable ? O_RDWR : O_RDONLY, 0);
    if (fd < 0) throw failure("shm_open", name);
    try {
      const actual = Number(c.lseek(fd, 0n, SEEK_END));
      if (actual < size) {
        throw new Error(`shared memory ${name}: holds ${actual} bytes, not the ${size} expected`);
      }
      return SharedSegment.#map(c, fd, name, size, at, writable);
    } finally {
      c.close(fd);
    }
  }

  static #map(
    c: Libc,
    fd: number,
    name: string,
    size: number,
    at?: Deno.PointerObject,
    writable = true,
  ): SharedSegment {
    if (at && (Number(Deno.UnsafePointer.value(at)) % MAX_PAGE_BYTES !== 0 || size % MAX_PAGE_BYTES !== 0)) {
      throw new Error(`shared memory ${name}: a fixed mapping must be whole ${MAX_PAGE_BYTES}-byte pages`);
    }
    const flags = at ? MAP_SHARED | MAP_FIXED : MAP_SHARED;
    const protection = writable ? PROT_READ | PROT_WRITE : PROT_READ;
    const pointer = c.mmap(at ?? null, BigInt(size), protection, flags, fd, 0n);
    if (pointer === null || Deno.UnsafePointer.value(pointer) === 0xffffffffffffffffn) {
      throw failure("mmap", name);
    }
    return new SharedSegment(name, pointer, size);
  }

  /**
   * Gives the shared memory back. The address range is mapped anew to private zero pages rather than
   * unmapped, so that a view still held somewhere reads zeros instead of crashing the process.
   */
  close(): void {
    if (this.#pointer === null) return;
    const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    lib().mmap(this.#pointer, BigInt(this.bytes.byteLength), PROT_READ | PROT_WRITE, flags, -1, 0n);
    this.#pointer = null;
  }
}

/** Removes a segment's name; its memory lives on while mapped. Missing names are fine. */
export function unlinkSegment(name: string): void {
  lib().shm_unlink(cName(name));
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A fresh name: gantry, the role, this process, and random bits, so that runs never collide. */
export function segmentName(role: string): string {
  const random = crypto.getRandomValues(new Uint8Array(8));
  return `/gantry-${role}-${Deno.pid}-${hex(random)}`;
}

/** Names a peer may ask this process to open: only the shapes segmentName() makes. */
export function isSegmentName(name: string): boolean {
  return /^\/gantry-[a-z]+-\d+-[0-9a-f]{16}$/.test(name);
}

/**
 * A worker's proof that it shares /dev/shm with the coordinator: a tiny segment holding a random nonce,
 * which the coordinator reads (never maps) before offering shared memory.
 */
export function writeProbe(): { name: string; nonce: string } {
  const c = lib();
  const name = segmentName("probe");
  const nonce = crypto.getRandomValues(new Uint8Array(PROBE_BYTES));
  const fd = c.shm_open(cName(name), O_RDWR | O_CREAT | O_EXCL, OWNER_ONLY);
  if (fd < 0) throw failure("shm_open", name);
  try {
    if (Number(c.write(fd, nonce, BigInt(PROBE_BYTES))) !== PROBE_BYTES) throw failure("write", name);
  } finally {
    c.close(fd);
  }
  return { name, nonce: hex(nonce) };
}

/** True when the probe `name` exists here and holds `nonce`. */
export function probeMatches(name: string, nonce: string): boolean {
  if (sharedMemorySupport() !== null || !isSegmentName(name)) return false;
  const c = lib();
  const fd = c.shm_open(cName(name), O_RDONLY, 0);
  if (fd < 0) return false;
  try {
    const bytes = new Uint8Array(PROBE_BYTES);
    if (Number(c.read(fd, bytes, BigInt(PROBE_BYTES))) !== PROBE_BYTES) return false;
    return hex(bytes) === nonce;
  } finally {
    c.close(fd);
  }
}

/**
 * Removes the names gantry processes that no longer run left in /dev/shm (a coordinator killed outright
 * leaves its weights segment's). The directory is read through libc: Deno guards /dev/shm behind
 * --allow-all. Returns the names removed.
 */
export function sweepStaleSegments(): string[] {
  if (sharedMemorySupport() !== null) return [];
  const c = lib();
  const directory = c.opendir(cName(SHM_DIRECTORY));
  if (directory === null) return [];
  const names: string[] = [];
  try {
    for (let entry = c.readdir(directory); entry !== null; entry = c.readdir(directory)) {
      names.push(`/${Deno.UnsafePointerView.getCString(entry, DIRENT_NAME_OFFSET)}`);
    }
  } finally {
    c.closedir(directory);
  }
  const swept: string[] = [];
  for (const name of names.filter(isSegmentName)) {
    const pid = Number(name.split("-")[2]);
    // kill(pid, 0) sends nothing: it fails with ESRCH only when no such process exists.
    if (c.kill(pid, 0) !== 0 && errno() === ESRCH) {
      unlinkSegment(name);
      swept.push(name);
    }
  }
  return swept;
}
