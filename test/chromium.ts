/**
 * Headless Chromium for the browser tests, driven by playwright-core: which binary, how it is launched, how
 * playwright is imported under Deno, and a bound on any wait. Without a Chromium the tests are skipped.
 */
import fs from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";

export const CHROMIUM_ENV = "GANTRY_CHROMIUM";
const CHROMIUM_NAMES = ["chromium", "chromium-browser"];
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--no-first-run",
  "--disable-component-update",
  "--disable-sync",
];
const LAUNCH_TIMEOUT_MS = 30_000;

/** The Chromium to drive: $GANTRY_CHROMIUM, else `chromium` or `chromium-browser` on PATH; null if none. */
export function findChromium(): string | null {
  const explicit = Deno.env.get(CHROMIUM_ENV);
  if (explicit) return explicit;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").filter((d) => d !== "")) {
    for (const name of CHROMIUM_NAMES) {
      try {
        if (Deno.statSync(join(dir, name)).isFile) return join(dir, name);
      } catch { /* not in this folder */ }
    }
  }
  return null;
}

/** The reason printed when a test is skipped for want of a Chromium. */
export function noChromiumReason(test: string): string {
  return `${test}: skipped: no Chromium found (set ${CHROMIUM_ENV}, or put one of ` +
    `${CHROMIUM_NAMES.join(", ")} on PATH: apt-get install chromium)`;
}

/**
 * playwright-core probes for WSL on import with fs.existsSync("/proc/sys/fs/binfmt_misc/WSLInterop"). Deno
 * lets only --allow-all read /proc/sys, and its existsSync throws NotCapable there where Node's never throws.
 * For the length of the import, existsSync gets Node's contract back: any error means "does not exist".
 */
async function importPlaywright(): Promise<typeof import("playwright-core")> {
  const existsSync = fs.existsSync;
  fs.existsSync = (path: fs.PathLike) => {
    try {
      return existsSync(path);
    } catch {
      return false;
    }
  };
  try {
    return await import("playwright-core");
  } finally {
    fs.existsSync = existsSync;
  }
}

export async function launchChromium(executablePath: string): Promise<Browser> {
  const { chromium } = await importPlaywright();
  return await chromium.launch({ executablePath, args: CHROMIUM_ARGS, timeout: LAUNCH_TIMEOUT_MS });
}

/** A page that may talk to `origin` only: any other request is aborted and listed in `foreign`. */
export async function loopbackPage(
  browser: Browser,
  origin: string,
  options: Parameters<Browser["newPage"]>[0] = {},
): Promise<{ page: Page; foreign: string[]; pageErrors: string[] }> {
  const page = await browser.newPage(options);
  const foreign: string[] = [];
  await page.route("**/*", (route) => {
    if (route.request().url().startsWith(`${origin}/`)) return route.continue();
    foreign.push(route.request().url());
    return route.abort();
  });
  const pageErrors: string[] = [];
  page.on("pageerror", (error) => pageErrors.push(error.message));
  return { page, foreign, pageErrors };
}
