/** The dashboard of one run, wired to the coordinator's recorder and registry: what main.ts starts. */
import type { Config } from "../../config/config.ts";
import type { RunRecorder } from "../recorder.ts";
import type { WorkerRegistry } from "../registry.ts";
import { checkAssets, dashboardHandler, type RequestHandler } from "./http.ts";
import { DashboardHub, workerView } from "./hub.ts";

export interface Dashboard {
  hub: DashboardHub;
  handler: RequestHandler;
}

export async function createDashboard(
  config: Config,
  recorder: RunRecorder,
  registry: WorkerRegistry,
): Promise<Dashboard> {
  checkAssets();
  const hub = new DashboardHub({
    runDir: recorder.dir,
    maxClients: config.dashboardMaxClients,
    maxPoints: config.dashboardMaxPoints,
    workers: () => registry.all.map(workerView),
  });
  await hub.load();
  recorder.listen(hub.listener);
  const handler = dashboardHandler({ hub, runDir: recorder.dir, token: config.token, host: config.host });
  return { hub, handler };
}

/** The URL to open: a wildcard listen address is reached through loopback. */
export function dashboardUrl(host: string, port: number): string {
  const name = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  return `http://${name}:${port}/`;
}
