// The side panels: procedure plan, records (past injections and their traces), transducer
// calibration and, on the simulator, fault provocation. All state comes from the server.
"use strict";
(() => {
const { api, $, control } = window.injectctl;
const get = async (path) => { const r = await fetch(api + path); return r.ok ? r.json() : null; };
const cell = (text) => { const td = document.createElement("td"); td.textContent = text ?? ""; return td; };
const row = (...cells) => { const tr = document.createElement("tr"); tr.append(...cells); return tr; };
const button = (text, action) => {
  const b = document.createElement("button"); b.type = "button"; b.textContent = text; b.onclick = action; return b;
};
const loaders = {};

// ---------------------------------------------------------------- tabs
for (const tab of document.querySelectorAll("[role=tab]")) {
  tab.onclick = () => {
    for (const other of document.querySelectorAll("[role=tab]")) {
      other.setAttribute("aria-selected", other === tab);
      $(`panel-${other.dataset.tab}`).hidden = other !== tab;
    }
    (loaders[tab.dataset.tab] || (() => {}))();
  };
}

// ---------------------------------------------------------------- procedure plan
const FIELDS = [["label", "text"], ["organ", "text"], ["size_mm", "number"], ["depth_mm", "number"],
  ["injected", "checkbox"], ["technique", "select"], ["volume_ml", "number"], ["aliquots", "number"],
  ["sectors", "number"]];
function editorRow(target = {}) {
  const tr = document.createElement("tr");
  for (const [name, type] of FIELDS) {
    const td = document.createElement("td");
    let input;
    if (type === "select") {
      input = document.createElement("select");
      for (const t of ["radial", "sequential"]) input.add(new Option(t, t));
    } else { input = document.createElement("input"); input.type = type; input.step = "any"; }
    input.name = name;
    if (type === "checkbox") input.checked = target.injected ?? true;
    else input.value = target[name] ?? { aliquots: 1, sectors: 4, technique: "radial" }[name] ?? "";
    td.append(input); tr.append(td);
  }
  $("target-editor").tBodies[0].append(tr);
}
function editedPlan() {
  const targets = [...$("target-editor").tBodies[0].rows].map((tr) => {
    const target = {};
    for (const input of tr.querySelectorAll("input, select")) {
      target[input.name] = input.type === "checkbox" ? input.checked
        : input.type === "number" ? Number(input.value) : input.value;
    }
    return target;
  });
  return { case_ref: $("case-ref").value, targets };
}
function useTarget(procedure, target) {
  const form = $("plan");
  form.procedure_id.value = procedure.id;
  form.target.value = target.label;
  form.volume_ml.value = (target.remaining_ml || target.volume_ml).toFixed(3);
  form.aliquots.value = target.technique === "radial" ? target.aliquots : 1;
  form.cycle.value = target.next ? target.next.cycle : "";
  form.sector.value = target.next ? target.next.sector : "";
  document.querySelector("[data-tab=inject]").click();
}
function showProcedure(procedure) {
  const body = $("procedure-progress").tBodies[0];
  body.replaceChildren();
  if (!procedure) return;
  $("case-ref").value = procedure.case_ref;
  for (const t of procedure.targets) {
    const next = !t.injected ? "not injected (watched)"
      : t.next ? `cycle ${t.next.cycle}, sector ${t.next.sector} of ${t.sectors}`
      : `${t.aliquots} aliquot(s) of ${(t.volume_ml / t.aliquots).toFixed(2)} mL`;
    const use = t.injected ? button("Use", () => useTarget(procedure, t)) : "";
    const warn = t.warnings.length ? ` ⚠ ${t.warnings.join("; ")}` : "";
    body.append(row(cell(t.label + warn), cell(`${t.delivered_ml.toFixed(3)} / ${t.volume_ml} mL`),
      cell(next), (() => { const td = cell(""); td.append(use); return td; })()));
  }
}
loaders.procedure = async () => {
  const procedure = await get("/procedure");
  if (procedure && !$("target-editor").tBodies[0].rows.length) procedure.targets.forEach(editorRow);
  if (!$("target-editor").tBodies[0].rows.length) editorRow();
  showProcedure(procedure);
};
$("add-target").onclick = () => editorRow();
$("save-plan").onclick = async () => {
  const saved = await control("/procedure", editedPlan(), "PUT");
  if (saved) { showProcedure(saved); $("message").textContent = "plan saved"; }
};

// ---------------------------------------------------------------- records
let traceChart = null;
async function showTrace(injection) {
  const [trace, full] = await Promise.all([get(`/injections/${injection.id}/trace?max_points=3000`),
    get(`/injections/${injection.id}`)]);
  if (!trace) return;
  const t0 = trace.t_mono_s.length ? trace.t_mono_s[0] : 0;
  const data = [trace.t_mono_s.map((t) => t - t0), trace.pressure_mmhg];
  if (!traceChart && window.uPlot) {
    traceChart = new uPlot({ width: Math.min(420, $("panel-records").clientWidth || 420), height: 200,
      scales: { x: { time: false } }, series: [{}, { label: `${injection.target} (mmHg)`, stroke: "#4fc3f7" }],
      axes: [{ stroke: "#aaa" }, { stroke: "#aaa" }] }, data, $("trace-chart"));
  } else if (traceChart) traceChart.setData(data);
  $("trace-chart").dataset.points = trace.pressure_mmhg.length;
  $("trace-events").replaceChildren(...(full ? full.events : []).map((e) => {
    const li = document.createElement("li");
    li.textContent = `${e.t.slice(11, 19)} ${e.kind}${e.detail ? ": " + e.detail : ""}`;
    return li;
  }));
}
loaders.records = async () => {
  const list = await get("/injections?limit=200") || [];
  $("injection-list").tBodies[0].replaceChildren(...list.map((i) => {
    const tr = row(cell((i.created || "").slice(0, 19).replace("T", " ")), cell(i.target), cell(i.state),
      cell(`${i.delivered_ml.toFixed(3)} / ${i.volume_ml}`), cell(i.alarm ? i.alarm.kind : ""));
    tr.tabIndex = 0; tr.dataset.id = i.id;
    tr.onclick = tr.onkeydown = (event) => { if (!event.key || event.key === "Enter") showTrace(i); };
    return tr;
  }));
};

// ---------------------------------------------------------------- calibration
loaders.calibration = async () => {
  const cal = await get("/calibration");
  if (!cal) return;
  const f = cal.in_force;
  $("cal-in-force").textContent = `Bridge ${cal.device_id}: ${cal.scale_source}; ` +
    `gain ${f.gain_counts_per_mmhg.toFixed(2)} counts/mmHg` +
    (f.nonlinearity_pct_span != null ? `, non-linearity ${f.nonlinearity_pct_span}% of span` : "");
  const residuals = cal.fitted ? cal.fitted.residuals_mmhg : [];
  $("cal-points").tBodies[0].replaceChildren(...cal.points.map((p, k) => row(cell(p.reference_mmhg),
    cell(p.raw_mean.toFixed(1)), cell(p.raw_sd.toFixed(1)), cell(residuals[k] ?? ""))));
  $("cal-fitted").textContent = cal.fitted ? `fitted ${cal.fitted.method}: gain ` +
    `${cal.fitted.gain_counts_per_mmhg.toFixed(2)}, non-linearity ${cal.fitted.nonlinearity_pct_span}% of span; ` +
    "Save to put it in force" : "";
  $("ver-points").tBodies[0].replaceChildren(...cal.checks.map((p) => row(cell(p.reference_mmhg),
    cell(p.reading_mmhg.toFixed(2)), cell(p.error_mmhg.toFixed(2)), cell(`±${p.allowed_mmhg}`),
    cell(p.passed ? "pass" : "FAIL"))));
  const certificates = await get("/calibration/verifications") || [];
  $("ver-certificates").replaceChildren(...certificates.map((c) => {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = c.html; a.target = "_blank";
    a.textContent = `${c.created_utc.slice(0, 19).replace("T", " ")}: ${c.passed ? "PASSED" : "FAILED"}`;
    li.append(a);
    return li;
  }));
  $("cal-history").tBodies[0].replaceChildren(...cal.history.map((r) => row(
    cell(r.created_utc.slice(0, 19).replace("T", " ")), cell(r.method),
    cell(r.gain_counts_per_mmhg.toFixed(2)), cell(r.nonlinearity_pct_span ?? ""))));
};
const calibrate = (path, body, method = "POST") => async () => {
  $("message").textContent = "reading…";
  const done = await control(path, typeof body === "function" ? body() : body, method);
  if (done) $("message").textContent = `${path.split("/").pop()}: done`;
  loaders.calibration();
};
$("cal-zero").onclick = calibrate("/calibration/zero");
$("cal-point").onclick = calibrate("/calibration/points", () => ({ reference_mmhg: Number($("cal-reference").value) }));
$("cal-fit").onclick = calibrate("/calibration/fit");
$("cal-save").onclick = calibrate("/calibration/save");
$("cal-clear").onclick = calibrate("/calibration/points", undefined, "DELETE");
$("ver-point").onclick = calibrate("/calibration/verify/points", () => ({ reference_mmhg: Number($("cal-reference").value) }));
$("ver-finish").onclick = calibrate("/calibration/verify");

// ---------------------------------------------------------------- simulator
loaders.sim = async () => {
  const sim = await get("/sim");
  if (!sim) return;
  $("sim-scenario").textContent = `Scenario ${sim.scenario}: ${sim.description}`;
  $("sim-stopcock").textContent = `(now ${sim.stopcock}${sim.reference_mmhg != null ? " " + sim.reference_mmhg + " mmHg" : ""})`;
  if (!$("sim-fault").options.length) for (const kind of sim.fault_kinds) $("sim-fault").add(new Option(kind, kind));
};
$("sim-provoke").onclick = async () => {
  const onset = await control("/sim/faults", { kind: $("sim-fault").value });
  if (onset) $("message").textContent = `simulator: ${onset.kind} provoked`;
};
for (const b of document.querySelectorAll(".stopcock")) {
  b.onclick = async () => {
    const body = { to: b.dataset.to };
    if (b.dataset.to === "reference") body.reference_mmhg = Number($("sim-reference").value);
    if (await control("/sim/stopcock", body, "PUT")) loaders.sim();
  };
}
get("/health").then((health) => { $("sim-tab").hidden = !(health && health.pump.simulated); });
})();
