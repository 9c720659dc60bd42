// The gantry dashboard page: follows /api/events (server-sent events, read with fetch so that a token can go
// in a header) and draws the run. Read-only: it never sends anything but GETs.
"use strict";

const TOKEN_KEY = "gantry-token";
const RETRY_MS = [1000, 2000, 5000, 10000];
/** Steps averaged for images/s and the ETA. */
const RATE_WINDOW = 20;
const $ = (id) => document.getElementById(id);

const state = {
  run: null,
  metrics: [],
  samples: [],
  workers: [],
  /** Server clock minus ours, so that "seen N s ago" is right whatever this machine's clock says. */
  clockSkew: 0,
  maxPoints: 20000,
  shownEpoch: null,
  followLatest: true,
};
const sampleUrls = new Map();
let lossChart = null;
let scoreChart = null;
let redrawQueued = false;

// What the browser test reads (the charts' data); nothing in it changes the run.
globalThis.gantryDashboard = {
  get lossChart() {
    return lossChart;
  },
  get scoreChart() {
    return scoreChart;
  },
  state,
};

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { authorization: `Bearer ${token}` } : {};
}

function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "-";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const mmss = `${String(m).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
  return h > 0 ? `${h}:${mmss}` : mmss;
}

function setConnection(text) {
  $("connection").textContent = text;
}

// ---- charts -------------------------------------------------------------------------------------------

function makeChart(container, series, yRange) {
  const opts = {
    width: container.clientWidth || 500,
    height: 260,
    scales: { x: { time: false }, y: yRange ? { range: yRange } : {} },
    axes: [{ label: "step" }, {}],
    series: [{ label: "step" }, ...series.map((s) => ({ ...s, width: 1.5, points: { show: false } }))],
    // Labels only: values under the cursor would read "--" whenever it is elsewhere.
    legend: { live: false },
  };
  const chart = new uPlot(opts, [[], ...series.map(() => [])], container);
  new ResizeObserver(() => chart.setSize({ width: container.clientWidth, height: 260 })).observe(container);
  return chart;
}

function createCharts() {
  lossChart = makeChart($("loss-chart"), [
    { label: "lossD", stroke: "#d62728" },
    { label: "lossG", stroke: "#1f77b4" },
  ]);
  scoreChart = makeChart($("score-chart"), [
    { label: "D(x)", stroke: "#2ca02c" },
    { label: "D(G(z)) D phase", stroke: "#ff7f0e" },
    { label: "D(G(z)) G phase", stroke: "#9467bd" },
  ], [0, 1]);
}

function column(key) {
  return state.metrics.map((p) => p[key]);
}

function redraw() {
  redrawQueued = false;
  const steps = column("step");
  lossChart.setData([steps, column("lossD"), column("lossG")]);
  scoreChart.setData([steps, column("dReal"), column("dFakeD"), column("dFakeG")]);
  renderProgress();
}

function queueRedraw() {
  if (redrawQueued) return;
  redrawQueued = true;
  requestAnimationFrame(redraw);
}

/** Keeps every other point past maxPoints, as the server does: the whole run at a coarser grain. */
function thin(points) {
  return points.length > state.maxPoints
    ? points.filter((_, i) => i % 2 === 1 || i === points.length - 1)
    : points;
}

// ---- progress -----------------------------------------------------------------------------------------

function renderProgress() {
  const run = state.run;
  const last = state.metrics[state.metrics.length - 1];
  if (!run || !last) {
    $("elapsed").textContent = run
      ? formatDuration((Date.now() + state.clockSkew - run.startedAt) / 1000)
      : "-";
    return;
  }
  const recent = state.metrics.slice(-RATE_WINDOW);
  const msPerStep = recent.reduce((n, p) => n + p.stepMs, 0) / recent.length;
  const rate = run.batchSize > 0 ? run.batchSize / (msPerStep / 1000) : last.imagesPerSec;
  const inEpoch = last.step - (last.epoch - 1) * run.stepsPerEpoch;
  const epochSteps = Math.max(
    1,
    Math.min(run.stepsPerEpoch, run.totalSteps - (last.epoch - 1) * run.stepsPerEpoch),
  );
  $("epoch-text").textContent = `${last.epoch} / ${run.epochs || "-"}`;
  $("epoch-bar").max = epochSteps;
  $("epoch-bar").value = Math.min(inEpoch, epochSteps);
  $("step-text").textContent = `${last.step} / ${run.totalSteps || "-"}`;
  $("step-bar").max = Math.max(1, run.totalSteps);
  $("step-bar").value = last.step;
  $("rate").textContent = rate.toFixed(1);
  const done = run.status !== "training" && run.status !== "waiting";
  $("eta").textContent = done ? "-" : formatDuration((run.totalSteps - last.step) * msPerStep / 1000);
  $("elapsed").textContent = formatDuration((last.time - run.startedAt) / 1000);
  $("loss-d").textContent = last.lossD.toFixed(4);
  $("loss-g").textContent = last.lossG.toFixed(4);
}

// ---- samples ------------------------------------------------------------------------------------------

async function sampleUrl(epoch) {
  if (sampleUrls.has(epoch)) return sampleUrls.get(epoch);
  const response = await fetch(`/samples/epoch-${String(epoch).padStart(4, "0")}.png`, {
    headers: authHeaders(),
  });
  if (!response.ok) throw new Error(`grid of epoch ${epoch}: HTTP ${response.status}`);
  const url = URL.createObjectURL(await response.blob());
  sampleUrls.set(epoch, url);
  return url;
}

async function showSample(epoch) {
  state.shownEpoch = epoch;
  const url = await sampleUrl(epoch);
  if (state.shownEpoch !== epoch) return; // the slider moved on meanwhile
  const img = $("sample");
  img.src = url;
  img.dataset.epoch = String(epoch);
  img.hidden = false;
  $("no-samples").hidden = true;
  $("sample-caption").textContent = `epoch ${epoch} of ${state.samples[state.samples.length - 1]}`;
}

function renderSamples() {
  const slider = $("sample-slider");
  const n = state.samples.length;
  if (n === 0) return;
  slider.hidden = n < 2;
  slider.max = String(n - 1);
  if (state.followLatest) slider.value = String(n - 1);
  showSample(state.samples[Number(slider.value)]).catch((e) => setConnection(e.message));
}

// ---- workers and configuration ------------------------------------------------------------------------

function renderWorkers() {
  const now = Date.now() + state.clockSkew;
  const rows = state.workers.map((w) => {
    const tr = document.createElement("tr");
    tr.className = w.state.toLowerCase();
    tr.dataset.worker = String(w.id);
    const live = w.state === "IDLE" || w.state === "BUSY";
    const seen = live ? `${Math.max(0, Math.round((now - w.lastSeen) / 1000))} s ago` : "-";
    const cells = [
      w.id,
      w.name,
      w.gpu ?? "-",
      `${w.backend} (${w.devices.join(", ")})`,
      live && w.imagesPerSec > 0 ? w.imagesPerSec.toFixed(1) : "-",
      seen,
      w.state === "GONE" ? `GONE: ${w.goneReason}` : w.state,
    ];
    for (const [i, value] of cells.entries()) {
      const td = document.createElement("td");
      td.textContent = String(value);
      if (i === cells.length - 1) td.className = "state";
      tr.append(td);
    }
    return tr;
  });
  $("worker-rows").replaceChildren(...rows);
  $("worker-count").textContent = String(
    state.workers.filter((w) => w.state === "IDLE" || w.state === "BUSY").length,
  );
}

function renderRun() {
  const run = state.run;
  if (!run) return;
  $("run-dir").textContent = run.dir;
  const status = $("status");
  status.textContent = run.status + (run.message ? ` (${run.message})` : "");
  status.className = `status ${run.status}`;
  const record = run.record ?? {};
  const entries = [
    ...Object.entries(record.config ?? {}),
    ...Object.entries(record.versions ?? {}).map(([k, v]) => [`version of ${k}`, v]),
    ...Object.entries(record.parameters ?? {}).map(([k, v]) => [`parameters of ${k}`, v]),
    ...Object.entries(record.dataset ?? {}).map(([k, v]) => [`dataset ${k}`, v]),
  ].filter(([, v]) => v !== undefined && v !== null);
  const rows = entries.map(([key, value]) => {
    const row = document.createElement("div");
    const k = document.createElement("span");
    const v = document.createElement("span");
    k.textContent = key;
    v.textContent = typeof value === "object" ? JSON.stringify(value) : String(value);
    row.append(k, v);
    return row;
  });
  $("config-table").replaceChildren(...rows);
  queueRedraw();
}

// ---- events -------------------------------------------------------------------------------------------

const handlers = {
  snapshot(data) {
    state.run = data.run;
    state.metrics = data.metrics;
    state.samples = data.samples;
    state.workers = data.workers;
    state.maxPoints = data.maxPoints;
    state.clockSkew = data.now - Date.now();
    renderRun();
    renderWorkers();
    renderSamples();
    queueRedraw();
  },
  metrics(point) {
    state.metrics.push(point);
    state.metrics = thin(state.metrics);
    queueRedraw();
  },
  sample({ epoch }) {
    if (!state.samples.includes(epoch)) state.samples.push(epoch);
    renderSamples();
  },
  workers({ now, workers }) {
    state.clockSkew = now - Date.now();
    state.workers = workers;
    renderWorkers();
  },
  run(run) {
    state.run = run;
    renderRun();
  },
};

function dispatch(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
  }
  if (data.length === 0 || !handlers[event]) return;
  handlers[event](JSON.parse(data.join("\n")));
}

function showLogin(message) {
  $("login-message").textContent = message;
  $("login").hidden = false;
  $("dashboard").hidden = true;
  $("token").focus();
}

/** Follows the event stream until it ends; returns the delay before the next try, or null to stop. */
async function follow() {
  const response = await fetch("/api/events", { headers: authHeaders(), cache: "no-store" });
  if (response.status === 401) {
    const body = await response.json().catch(() => ({}));
    showLogin(body.error ?? "this dashboard needs the run's token");
    return null;
  }
  if (!response.ok) {
    setConnection(`dashboard: HTTP ${response.status}; retrying`);
    return RETRY_MS[RETRY_MS.length - 1];
  }
  $("login").hidden = true;
  $("dashboard").hidden = false;
  setConnection("");
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += value;
    const blocks = buffered.split("\n\n");
    buffered = blocks.pop();
    for (const block of blocks) dispatch(block);
  }
  return RETRY_MS[0];
}

async function connect() {
  let attempt = 0;
  for (;;) {
    let delay;
    try {
      delay = await follow();
      if (delay === RETRY_MS[0]) attempt = 0;
    } catch {
      delay = RETRY_MS[Math.min(attempt++, RETRY_MS.length - 1)];
    }
    if (delay === null) return;
    const ended = state.run && state.run.status !== "training" && state.run.status !== "waiting";
    setConnection(ended ? "the coordinator has exited" : "coordinator unreachable; reconnecting");
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value);
  $("token").value = "";
  connect();
});

$("sample-slider").addEventListener("input", () => {
  const slider = $("sample-slider");
  state.followLatest = Number(slider.value) === state.samples.length - 1;
  renderSamples();
});

// "seen N s ago" and the elapsed time move on between events.
setInterval(() => {
  renderWorkers();
  if (state.metrics.length === 0) renderProgress();
}, 1000);

createCharts();
connect();
