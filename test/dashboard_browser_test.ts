/**
 * The dashboard in a real browser during a real run: a coordinator (with a token) and two workers on
 * 127.0.0.1, headless Chromium on the coordinator's own port. The page asks for the token, then its loss
 * chart gains points as steps complete, the first sample grid appears after epoch 1, and a worker killed
 * with SIGKILL mid-run is shown as gone while training goes on. Nothing is fetched from off this machine.
 *
 * Needs a Chromium (see test/chromium.ts); without one the browser test is skipped with the reason printed.
 */
import type { Browser, Page } from "playwright-core";
import { assert, assertEquals, within } from "../shared/testing.ts";
import { TEST_BACKEND } from "./backend.ts";
import { findChromium, launchChromium, loopbackPage, noChromiumReason } from "./chromium.ts";
import { cleanup, coordinatorUrl, type Proc, startCoordinator, startWorker } from "./processes.ts";

const START_TIMEOUT_MS = 60_000;
/** Each wait for the page to show something; generous because the CPU is shared with the run. */
const PAGE_TIMEOUT_MS = 60_000;
const EXIT_TIMEOUT_MS = 60_000;
const DASHBOARD = /gantry dashboard at (http:\/\/\S+)/;
const TOKEN = "dashboard-test-token";
const SCREENSHOT = "/tmp/gantry-dashboard-test.png";
/** 256 examples at a global batch of 32: 8 steps an epoch; far more epochs than the test waits for. */
const RUN = [
  "--model=mlp",
  "--examples=256",
  "--batch-size=32",
  "--epochs=200",
  "--progress=lines",
  "--seed=5",
  "--port=0",
  "--workers=2",
];

/** What app.js exposes for tests: the charts' data, read-only. */
interface DashboardGlobals {
  gantryDashboard: { lossChart: { data: number[][] } | null };
}

/** The little of the DOM the test reads (Deno's types have no DOM). */
interface PageDocument {
  document: {
    getElementById(id: string): {
      hidden: boolean;
      complete: boolean;
      naturalWidth: number;
      dataset: Record<string, string>;
    };
  };
}

function lossPoints(page: Page): Promise<number> {
  return page.evaluate(() =>
    (globalThis as unknown as DashboardGlobals).gantryDashboard.lossChart?.data[0].length ?? 0
  );
}

/** Waits until the loss chart holds more than `n` points; returns how many it holds. */
async function morePointsThan(page: Page, n: number, what: string): Promise<number> {
  await within(
    PAGE_TIMEOUT_MS,
    what,
    page.waitForFunction(
      (min) =>
        ((globalThis as unknown as DashboardGlobals).gantryDashboard.lossChart?.data[0].length ?? 0) > min,
      n,
      { timeout: PAGE_TIMEOUT_MS, polling: 100 },
    ),
  );
  return await lossPoints(page);
}

const CHROMIUM = findChromium();
if (CHROMIUM === null) console.warn(noChromiumReason("test/dashboard_browser_test.ts"));

Deno.test({
  name: "the dashboard shows a live run in Chromium: losses, samples, and a killed worker as gone",
  ignore: CHROMIUM === null,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "gantry-dashboard-e2e-" });
    const env = { GANTRY_TOKEN: TOKEN };
    const coordinator = startCoordinator([...RUN, `--out=${out}`], env);
    const workers: Proc[] = [];
    let browser: Browser | null = null;
    try {
      const wsUrl = await coordinatorUrl(coordinator, START_TIMEOUT_MS);
      const url = (await coordinator.waitFor(DASHBOARD, START_TIMEOUT_MS))[1];
      assertEquals(new URL(url).port, new URL(wsUrl).port, "the dashboard is on the workers' port");

      browser = await within(PAGE_TIMEOUT_MS, "launching Chromium", launchChromium(CHROMIUM!));
      const { page, foreign, pageErrors } = await loopbackPage(browser, new URL(url).origin, {
        viewport: { width: 1400, height: 1000 },
      });
      page.setDefaultTimeout(PAGE_TIMEOUT_MS);
      await page.goto(url, { waitUntil: "load" });

      // A token is set: the page asks for it before it shows anything of the run.
      await page.locator("#login").waitFor({ state: "visible" });
      assert(await page.locator("#dashboard").isHidden(), "nothing of the run before the token");
      await page.fill("#token", "wrong");
      await page.click("#login button");
      await page.locator("#login-message", { hasText: "wrong token" }).waitFor();
      await page.fill("#token", TOKEN);
      await page.click("#login button");
      await page.locator("#dashboard").waitFor({ state: "visible" });

      // The page was up before any worker: they join while it watches.
      for (const i of [1, 2]) {
        workers.push(
          startWorker(`worker ${i}`, [`--coordinator=${wsUrl}`, `--backend=${TEST_BACKEND}`], env),
        );
      }

      // Both workers in the table, then the loss chart gaining points as steps complete.
      await page.locator("#worker-rows tr").nth(1).waitFor();
      const first = await morePointsThan(page, 0, "the first step on the loss chart");
      const later = await morePointsThan(page, first, "more steps on the loss chart");
      assert(later > first, `the chart grew: ${first} -> ${later} points`);
      assert((await page.textContent("#step-text"))!.includes("/ 1600"), "step progress of the whole run");

      // The first sample grid after epoch 1 (8 steps), decoded by the browser.
      await page.waitForFunction(() => {
        const img = (globalThis as unknown as PageDocument).document.getElementById("sample");
        return !img.hidden && img.complete && img.naturalWidth > 0;
      });
      const grid = await page.evaluate(() => {
        const img = (globalThis as unknown as PageDocument).document.getElementById("sample");
        return { epoch: img.dataset.epoch, width: img.naturalWidth };
      });
      assertEquals(grid.epoch, "1");
      assert(grid.width >= 280, `a 10x10 grid of 28-pixel digits: ${grid.width}`);

      // A worker killed mid-run: its row says GONE, and the chart goes on with the other one.
      const victim = workers[1];
      const victimName = `worker-${victim.child.pid}`;
      victim.kill("SIGKILL");
      const row = page.locator("#worker-rows tr", { hasText: victimName });
      await row.locator("td.state", { hasText: "GONE" }).waitFor();
      const survivor = page.locator("#worker-rows tr", { hasText: `worker-${workers[0].child.pid}` });
      assert(
        /IDLE|BUSY/.test((await survivor.locator("td.state").textContent())!),
        "the other worker is live",
      );
      const afterKill = await lossPoints(page);
      await morePointsThan(page, afterKill, "steps after the kill");
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      console.log(`screenshot: ${SCREENSHOT}`);

      // Ctrl-C: the coordinator checkpoints and stops; the page says so.
      coordinator.kill("SIGINT");
      assertEquals(await coordinator.exit(EXIT_TIMEOUT_MS), 130);
      await page.locator("#status", { hasText: "stopped" }).waitFor();
      assertEquals(pageErrors, [], "errors in the page");
      assertEquals(foreign, [], "requests that left the coordinator");
    } catch (error) {
      // What the processes said, and what the page showed, make a failure readable.
      const pages = browser?.contexts().flatMap((c) => c.pages()) ?? [];
      await pages[0]?.screenshot({ path: SCREENSHOT, fullPage: true }).catch(() => {});
      throw new Error(
        `${(error as Error).message}\npage: ${SCREENSHOT}\ncoordinator:\n${
          coordinator.output().slice(-3000)
        }\n` +
          workers.map((w) => `${w.name}:\n${w.output().slice(-1500)}`).join("\n"),
      );
    } finally {
      await browser?.close().catch(() => {});
      await cleanup(coordinator, ...workers);
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test("--dashboard false: the port serves workers only, plain HTTP requests get 404", async () => {
  const out = await Deno.makeTempDir({ prefix: "gantry-dashboard-off-" });
  const coordinator = startCoordinator([...RUN, "--dashboard", "false", `--out=${out}`]);
  try {
    const wsUrl = await coordinatorUrl(coordinator, START_TIMEOUT_MS);
    const origin = wsUrl.replace("ws://", "http://");
    for (const path of ["/", "/api/state", "/app.js"]) {
      const response = await fetch(`${origin}${path}`, { signal: AbortSignal.timeout(10_000) });
      await response.body?.cancel();
      assertEquals(response.status, 404, path);
    }
    assert(!DASHBOARD.test(coordinator.output()), "no dashboard URL is printed");
  } finally {
    await cleanup(coordinator);
    await Deno.remove(out, { recursive: true });
  }
});
