/**
 * The Deno permissions of each role, in one place: the launcher starts its children with them, and the
 * deno.json tasks spell the same sets (a test checks that they agree).
 */
export const COORDINATOR_PERMISSIONS = [
  "--allow-net=127.0.0.1,localhost,0.0.0.0",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-ffi",
];

export const WORKER_PERMISSIONS = [
  "--allow-net=127.0.0.1,localhost",
  "--allow-read",
  "--allow-env",
  "--allow-ffi",
  "--allow-sys",
];
