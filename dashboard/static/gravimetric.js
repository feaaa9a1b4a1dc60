// Pump gravimetric reports in the Calibration tab: the list, the chosen report's trumpet
// curve (uPlot), its printable page and PNG; on the simulator, a run on the emulated bench.
"use strict";
(() => {
const { api, $, control } = window.injectctl;
const get = async (path) => { const r = await fetch(api + path); return r.ok ? r.json() : null; };
const cell = (text) => { const td = document.createElement("td"); td.textContent = text ?? ""; return td; };
const link = (href, text) => { const a = document.createElement("a"); a.href = href; a.target = "_blank"; a.textContent = text; return a; };
const pct = (x) => `${x >= 0 ? "+" : ""}${x.toFixed(2)} %`;
let chart = null;

function showTrumpet(report) {
  const windows = report.trumpet.map((t) => t.window_min);
  const data = [windows, report.trumpet.map((t) => t.max_error_pct), report.trumpet.map((t) => t.min_error_pct),
    windows.map(() => report.mean_error_pct)];
  if (!chart && window.uPlot) {
    chart = new uPlot({ width: Math.min(420, $("panel-calibration").clientWidth || 420), height: 200,
      scales: { x: { time: false } },
      series: [{ label: "window min" }, { label: "Ep(max) %", stroke: "#ef5350" },
        { label: "Ep(min) %", stroke: "#4fc3f7" }, { label: "A %", stroke: "#aaa", dash: [4, 4] }],
      axes: [{ stroke: "#aaa" }, { stroke: "#aaa" }] }, data, $("grav-chart"));
  } else if (chart) chart.setData(data);
  $("grav-chart").dataset.report = report.stamp;
  $("grav-links").replaceChildren(`${report.pump_id}, ${report.syringe} at ${report.rate_ml_h} mL/h: `,
    link(report.html, "printable report"), " · ", link(report.png, "curves (PNG)"));
}

async function loadReports() {
  const reports = await get("/calibration/pump/gravimetric") || [];
  $("grav-reports").tBodies[0].replaceChildren(...reports.map((r) => {
    const tr = document.createElement("tr");
    tr.append(cell(r.created_utc.slice(0, 19).replace("T", " ")), cell(r.pump_id), cell(r.syringe),
      cell(r.rate_ml_h), cell(pct(r.mean_error_pct)), cell(r.passed ? "PASS" : "FAIL"));
    tr.tabIndex = 0; tr.dataset.stamp = r.stamp;
    tr.onclick = tr.onkeydown = (event) => { if (!event.key || event.key === "Enter") showTrumpet(r); };
    return tr;
  }));
  if (reports.length) showTrumpet(reports[0]);
}

async function follow() {
  const p = await get("/calibration/pump/gravimetric/run");
  if (!p) return;
  if (p.running) {
    $("grav-progress").textContent = `running: ${p.done} of ${p.total} weights`;
    setTimeout(follow, 500);
    return;
  }
  $("grav-progress").textContent = p.error ? `aborted: ${p.error}` : p.stamp ? `done: ${p.passed ? "PASS" : "FAIL"}` : "";
  loadReports();
}

$("grav-run").onclick = async () => {
  const started = await control("/calibration/pump/gravimetric/run", {
    syringe: $("grav-syringe").value, rate_ml_h: Number($("grav-rate").value),
    duration_min: Number($("grav-duration").value), speed: Number($("grav-speed").value) });
  if (started) follow();
};
document.querySelector("[data-tab=calibration]").addEventListener("click", () => { loadReports(); follow(); });
get("/health").then((health) => { $("grav-form").hidden = !(health && health.pump.simulated); });
})();
