import { assert, assertEquals, assertThrows } from "../shared/testing.ts";
import { GantryError } from "../shared/errors.ts";
import { helpText, isLoopback, loadConfig, toFlags, TOKEN_VARIABLE } from "./load.ts";

Deno.test("loadConfig() gives MODEL.md's defaults when no flag is set", () => {
  const config = loadConfig("coordinator", []);
  assertEquals(config.model, "cdcgan");
  assertEquals(config.batchSize, 128);
  assertEquals(config.epochs, 30);
  assertEquals(config.lr, 2e-4);
  assertEquals(config.beta1, 0.5);
  assertEquals(config.beta2, 0.999);
  assertEquals(config.latentDim, 100);
  assertEquals(config.labelSmoothing, 0);
  assertEquals(config.host, "127.0.0.1");
  assertEquals(config.port, 8765);
  assertEquals(config.seed, undefined);
});

Deno.test("loadConfig() takes flags in both --flag value and --flag=value forms", () => {
  const config = loadConfig("train", ["--model", "mlp", "--batch-size=64", "--lr", "1e-3", "--workers", "2"]);
  assertEquals([config.model, config.batchSize, config.lr, config.workers], ["mlp", 64, 1e-3, 2]);
});

Deno.test("loadConfig() names the flag and the value at fault", () => {
  const e1 = assertThrows(
    () => loadConfig("coordinator", ["--batch-size", "0"]),
    GantryError,
    "--batch-size",
  );
  assert(e1.message.includes('current value is "0"'), e1.message);
  assertEquals(e1.code, "E_CONFIG");
  assertThrows(() => loadConfig("coordinator", ["--epochs", "2.5"]), GantryError, "must be an integer");
  assertThrows(() => loadConfig("coordinator", ["--label-smoothing", "-0.1"]), GantryError, "must be >= 0");
  assertThrows(() => loadConfig("coordinator", ["--model", "resnet"]), GantryError, "cdcgan, mlp");
  assertThrows(() => loadConfig("coordinator", ["--lr", "abc"]), GantryError, "--lr must be a number");
  assertThrows(() => loadConfig("coordinator", ["--lr", "0"]), GantryError, "--lr must be > 0");
});

Deno.test("loadConfig() rejects unknown flags and flags of another role", () => {
  assertThrows(() => loadConfig("coordinator", ["--batchsize", "3"]), GantryError, "batchsize");
  assertThrows(
    () => loadConfig("coordinator", ["--gpu", "0"]),
    GantryError,
    "--gpu is not an option of the coordinator",
  );
  assertThrows(
    () => loadConfig("worker", ["--epochs", "3"]),
    GantryError,
    "--epochs is not an option of the worker",
  );
});

Deno.test("loadConfig() layers defaults < config file < flags, and rejects unknown keys in the file", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/run.json`;
  await Deno.writeTextFile(file, JSON.stringify({ batchSize: 32, "latent-dim": 64, epochs: 3, gpu: 1 }));
  const config = loadConfig("coordinator", ["--config", file, "--epochs", "5"]);
  assertEquals([config.batchSize, config.latentDim, config.epochs], [32, 64, 5]);
  await Deno.writeTextFile(file, JSON.stringify({ batchsize: 32 }));
  assertThrows(
    () => loadConfig("coordinator", ["--config", file]),
    GantryError,
    `unknown option "batchsize"`,
  );
  await Deno.writeTextFile(file, JSON.stringify({ batchSize: "big" }));
  assertThrows(
    () => loadConfig("coordinator", ["--config", file]),
    GantryError,
    `"batchSize" must be a number`,
  );
  await Deno.writeTextFile(file, "{ nope");
  assertThrows(() => loadConfig("coordinator", ["--config", file]), GantryError, "not valid JSON");
  assertThrows(
    () => loadConfig("coordinator", ["--config", `${dir}/missing.json`]),
    GantryError,
    "cannot read",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadConfig() checks options against each other", () => {
  assertThrows(
    () => loadConfig("worker", ["--heartbeat-interval-ms", "5000", "--heartbeat-timeout-ms", "100"]),
    GantryError,
    "--heartbeat-timeout-ms must be greater",
  );
  assertThrows(() => loadConfig("worker", ["--coordinator", "http://x"]), GantryError, "ws://");
});

Deno.test("toFlags() hands a role exactly the options it takes, and they parse back to the same values", () => {
  const train = loadConfig("train", ["--model", "mlp", "--epochs", "2", "--backend", "wasm", "--seed", "7"]);
  const coordinatorFlags = toFlags(train, "coordinator");
  assert(!coordinatorFlags.some((f) => f.startsWith("--backend")), "backend is a worker option");
  const back = loadConfig("coordinator", coordinatorFlags);
  assertEquals([back.model, back.epochs, back.seed], ["mlp", 2, 7]);
  const worker = loadConfig("worker", toFlags(train, "worker"));
  assertEquals(worker.backend, "wasm");
  assert(!coordinatorFlags.some((f) => f.startsWith("--batch-size")), "defaults are not forwarded");
});

Deno.test("helpText() lists every flag of a role with its default", () => {
  const text = helpText("coordinator");
  assert(text.includes("--batch-size") && text.includes("[default: 128]"));
  assert(!text.includes("--gpu"));
});

Deno.test("listening off loopback needs a token; GANTRY_TOKEN gives it, and a flag overrides the variable", () => {
  assertThrows(() => loadConfig("coordinator", ["--host", "0.0.0.0"]), GantryError, "--host 0.0.0.0");
  assertEquals(loadConfig("coordinator", ["--host", "0.0.0.0", "--token", "s3cret"]).token, "s3cret");
  assertEquals(loadConfig("coordinator", ["--host", "127.0.0.2"]).token, undefined);
  Deno.env.set(TOKEN_VARIABLE, "from-env");
  try {
    assertEquals(loadConfig("coordinator", ["--host", "0.0.0.0"]).token, "from-env");
    assertEquals(loadConfig("worker", []).token, "from-env");
    assertEquals(loadConfig("worker", ["--token", "flag"]).token, "flag");
  } finally {
    Deno.env.delete(TOKEN_VARIABLE);
  }
  assert(isLoopback("localhost") && isLoopback("::1") && !isLoopback("10.0.0.1"), "loopback names");
});

Deno.test("--min-workers may not exceed --workers", () => {
  assertThrows(
    () => loadConfig("coordinator", ["--workers", "2", "--min-workers", "3"]),
    GantryError,
    "--min-workers must be <= --workers: current values are 3 and 2",
  );
});
