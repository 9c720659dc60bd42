/**
 * The dashboard's HTTP side, on the coordinator's port (the WebSocket upgrades go to the workers' endpoint):
 * the page and its assets (uPlot from node_modules: nothing from a CDN), the run's state as JSON and as an
 * event stream, and the run's sample grids. GET and HEAD only, a fixed set of paths, and no file outside
 * the run folder's samples/. With a token, run data needs `Authorization: Bearer TOKEN`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { GantryError } from "../../shared/errors.ts";
import { sameSecret } from "../server.ts";
import { type DashboardHub, sampleEpoch, samplePath } from "./hub.ts";

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface DashboardHttpOptions {
  hub: DashboardHub;
  runDir: string;
  /** Required of every request for run data when set. */
  token?: string;
  /** The address the coordinator listens on: the Host a page may use besides loopback names. */
  host: string;
}

const STATIC = new URL("./static/", import.meta.url);
const UPLOT = new URL("../../node_modules/uplot/dist/", import.meta.url);

/** Every file the dashboard serves besides run data: URL path → file. */
export const ASSETS: ReadonlyMap<string, { file: URL; type: string }> = new Map([
  ["/", { file: new URL("index.html", STATIC), type: "text/html; charset=utf-8" }],
  ["/app.js", { file: new URL("app.js", STATIC), type: "text/javascript; charset=utf-8" }],
  ["/app.css", { file: new URL("app.css", STATIC), type: "text/css; charset=utf-8" }],
  ["/vendor/uPlot.iife.min.js", {
    file: new URL("uPlot.iife.min.js", UPLOT),
    type: "text/javascript; charset=utf-8",
  }],
  ["/vendor/uPlot.min.css", { file: new URL("uPlot.min.css", UPLOT), type: "text/css; charset=utf-8" }],
]);

/** Scripts, styles and data only from this server; images also as blob: URLs (grids fetched with a token). */
const SECURITY_HEADERS = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
    "img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/** Fails with a clear error when an asset is missing (uplot not installed), rather than serving a blank page. */
export function checkAssets(): void {
  for (const [path, { file }] of ASSETS) {
    try {
      Deno.statSync(file);
    } catch {
      throw new GantryError(
        "E_CONFIG",
        `dashboard: ${file.pathname} (for ${path}) is missing: run \`deno install\`, or pass --dashboard false`,
      );
    }
  }
}

/** Hosts a browser may name for this server: loopback, IP literals and the listen address. */
function hostAllowed(hostHeader: string | undefined, listenHost: string): boolean {
  if (!hostHeader) return false;
  const name = hostHeader.startsWith("[") ? hostHeader.slice(0, hostHeader.indexOf("]") + 1) : hostHeader
    .replace(/:\d+$/, "");
  return name === "localhost" || name === listenHost || /^\d+\.\d+\.\d+\.\d+$/.test(name) ||
    name.startsWith("[");
}

function bearer(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  return header?.startsWith("Bearer ") ? header.slice("Bearer ".length) : undefined;
}

function reply(
  res: ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "cache-control": "no-store",
    ...SECURITY_HEADERS,
    ...headers,
  });
  res.end(body);
}

function error(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}) {
  reply(res, status, JSON.stringify({ error: message }) + "\n", headers);
}

async function sendFile(
  req: IncomingMessage,
  res: ServerResponse,
  file: URL | string,
  type: string,
  cache: string,
): Promise<void> {
  let body: Uint8Array;
  try {
    body = await Deno.readFile(file);
  } catch {
    error(res, 404, "not found");
    return;
  }
  res.writeHead(200, {
    "content-type": type,
    "content-length": String(body.length),
    "cache-control": cache,
    ...SECURITY_HEADERS,
  });
  res.end(req.method === "HEAD" ? undefined : body);
}

export function dashboardHandler(options: DashboardHttpOptions): RequestHandler {
  return (req, res) => {
    handle(req, res, options).catch((e) => {
      if (!res.headersSent) error(res, 500, String(e?.message ?? e));
      else res.destroy();
    });
  };
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  options: DashboardHttpOptions,
): Promise<void> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    error(res, 405, "the dashboard is read-only", { allow: "GET, HEAD" });
    return;
  }
  // Without a token the server trusts loopback alone: refuse pages that reached it through another name
  // (DNS rebinding would let any web site read the run).
  if (!options.token && !hostAllowed(req.headers.host, options.host)) {
    error(res, 403, "unexpected Host header");
    return;
  }
  const path = new URL(req.url ?? "/", "http://dashboard").pathname;
  const asset = ASSETS.get(path);
  if (asset) {
    await sendFile(req, res, asset.file, asset.type, "no-cache");
    return;
  }
  const isRunData = path.startsWith("/api/") || path.startsWith("/samples/");
  if (!isRunData) {
    error(res, 404, "not found");
    return;
  }
  if (options.token) {
    const given = bearer(req);
    if (given === undefined || !sameSecret(given, options.token)) {
      // No WWW-Authenticate: the page asks for the token itself, not the browser's login box.
      error(res, 401, given === undefined ? "this dashboard needs the run's token" : "wrong token");
      return;
    }
  }
  if (path === "/api/state") {
    reply(res, 200, JSON.stringify(options.hub.snapshot()));
  } else if (path === "/api/events") {
    if (!options.hub.attach(res)) {
      error(res, 503, "too many dashboard pages are open (--dashboard-max-clients)", { "retry-after": "10" });
    }
  } else if (path.startsWith("/samples/")) {
    const epoch = sampleEpoch(path.slice("/samples/".length));
    if (epoch === null) error(res, 404, "not found");
    // A grid never changes once written: the browser may keep it.
    else await sendFile(req, res, samplePath(options.runDir, epoch), "image/png", "private, max-age=86400");
  } else {
    error(res, 404, "not found");
  }
}
