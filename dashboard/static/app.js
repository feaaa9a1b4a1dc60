// The operator page. Everything shown comes from the server (state, injection, telemetry),
// so a reload loses nothing. Control calls carry the operator token, asked for once and kept
// for the browser session.
"use strict";
const api = "/api/v1";
const $ = (id) => document.getElementById(id);
const HIGH = new Set(["occlusion", "over_pressure", "leak", "link_lost", "pump_fault", "sensor_fault"]);
let current = null;   // the injection shown
let limit = 900;
const WINDOW_S = 30;
const times = [], values = [];

function token() {
  let t = sessionStorage.getItem("injectctl-token");
  if (!t) { t = prompt("Operator token") || ""; sessionStorage.setItem("injectctl-token", t); }
  return t;
}

// a refusal in words: the server's reason (409), or each field and what it broke (422)
function describe(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  return detail ? JSON.stringify(detail) : "";
}

async function control(path, body, method = "POST") {
  const response = await fetch(api + path, {
    method,
    headers: { "Content-Type": "application/json", "Authorization": "Bearer " + token() },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => ({}));
  if (response.status === 401) sessionStorage.removeItem("injectctl-token");
  $("message").textContent = response.ok ? "" : `${response.status}: ${describe(data.detail)}`;
  return response.ok ? data : null;
}

function chartWidth() { return Math.max(300, document.querySelector(".live").clientWidth - 10); }
const chart = window.uPlot ? new uPlot({
  width: chartWidth(), height: 300,
  scales: { x: { time: false }, y: { auto: true } },
  series: [{}, { label: "pressure (mmHg)", stroke: "#4fc3f7" },
           { label: "limit", stroke: "#f44", dash: [6, 6] }],
  axes: [{ stroke: "#aaa" }, { stroke: "#aaa" }],
}, [[], [], []], $("chart")) : null;
window.chartPoints = () => received;
window.addEventListener("resize", () => chart && chart.setSize({ width: chartWidth(), height: 300 }));

const DECIMATE = 10;  // 100 points a second on the chart: enough for the eye, light for a tablet
let received = 0;
function addSamples(message) {
  for (let k = 0; k < message.p.length; k++, received++) {
    if (received % DECIMATE) continue;
    times.push(message.t0 + k * message.dt);
    values.push(message.p[k]);
  }
  const cut = times.length ? times[times.length - 1] - WINDOW_S : 0;
  while (times.length && times[0] < cut) { times.shift(); values.shift(); }
  $("pressure").textContent = message.p.length ? message.p[message.p.length - 1].toFixed(1) : "--";
  if (chart) {
    const t0 = times.length ? times[times.length - 1] : 0;
    chart.setData([times.map((t) => t - t0), values, values.map(() => limit)]);
  }
}

function showState(state) {
  $("state-badge").textContent = state.state;
  $("state-badge").dataset.state = state.state;
  $("line-settling").hidden = state.line_settled !== false || state.state === "running";
  const alarm = state.alarms && state.alarms[0];
  $("alarm").hidden = !alarm;
  if (alarm) {
    $("alarm").dataset.priority = HIGH.has(alarm.kind) ? "high" : "medium";
    $("alarm-kind").textContent = alarm.kind.replace("_", " ").toUpperCase() + ":";
    $("alarm-detail").textContent = alarm.detail;
  }
  if (state.injection_id) refreshInjection(state.injection_id);
}

async function refreshInjection(id) {
  const response = await fetch(`${api}/injections/${id}`);
  if (!response.ok) return;
  current = await response.json();
  const done = current.delivered_ml, planned = current.volume_ml;
  $("target").textContent = `${current.target}` + (current.fills_ml.length > 1 ? ` (part ${current.events.filter((e) => e.kind === "resumed").length + 1} of ${current.fills_ml.length})` : "");
  $("progress").max = planned; $("progress").value = done;
  $("volume").textContent = `${done.toFixed(3)} / ${planned.toFixed(3)} mL`;
  const now = current.rate_now_ml_min;
  $("rate").textContent = now != null && now < current.rate_ml_min
    ? `${now.toFixed(3)} mL/min (held under ${current.pressure_ceiling_mmhg} mmHg; planned ${current.rate_ml_min})`
    : `${current.rate_ml_min} mL/min`;
  const left = (planned - done) / (current.rate_now_ml_min || current.rate_ml_min) * 60;
  $("remaining").textContent = current.state === "running" ? `${left.toFixed(0)} s left` : "";
  limit = current.pressure_limit_mmhg || limit;
  $("limit-label").textContent = `limit ${limit.toFixed(0)}`;
  $("waiting").hidden = !current.waiting_for;
  $("waiting").textContent = current.waiting_for ? `Waiting for: ${current.waiting_for} (then Resume)` : "";
}

function connect() {
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${api}/telemetry`);
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "samples") addSamples(message);
    else if (message.type === "state") showState(message);
  };
  socket.onclose = () => setTimeout(connect, 1000);
}

setInterval(() => { if (current && current.state === "running") refreshInjection(current.id); }, 500);

$("plan").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData($("plan"));
  const body = Object.fromEntries([...form.entries()].filter(([, value]) => value !== ""));
  for (const key of ["volume_ml", "rate_ml_min", "aliquots", "cycle", "sector", "pressure_ceiling_mmhg"]) {
    if (key in body) body[key] = Number(body[key]);
  }
  const boxes = [...document.querySelectorAll(".check")];
  body.checklist_confirmed = boxes.length > 0 && boxes.every((box) => box.checked);
  const created = await control("/injections", body);
  if (created) { current = created; refreshInjection(created.id); $("message").textContent = `planned ${created.id}`; }
});
$("start").onclick = () => current && control(`/injections/${current.id}/start`).then(() => refreshInjection(current.id));
$("pause").onclick = () => current && control(`/injections/${current.id}/pause`);
$("resume").onclick = () => current && control(`/injections/${current.id}/resume`);
$("zero").onclick = async () => {
  if (await control("/transducer/zero")) { $("message").textContent = "zeroed"; showChecklist(); }
};
$("acknowledge").onclick = () => control("/alarms/acknowledge");
const stop = () => current && control(`/injections/${current.id}/stop`).then(() => refreshInjection(current.id));
$("stop").onclick = stop;
document.addEventListener("keydown", (event) => { if (event.key === "Escape") stop(); });

async function showChecklist() {
  const list = await (await fetch(`${api}/checklist`)).json();
  const box = $("checklist");
  if (!box.querySelector(".check")) {
    for (const item of list.items) {
      const label = document.createElement("label");
      label.innerHTML = `<input type="checkbox" class="check" data-item="${item.id}"> `;
      label.append(item.text);
      box.append(label);
    }
  }
  $("gates").replaceChildren(...list.gates.map((gate) => {
    const li = document.createElement("li");
    li.dataset.ok = gate.ok;
    li.textContent = `${gate.ok ? "✓" : "✗"} ${gate.id.replaceAll("_", " ")}${gate.detail ? ": " + gate.detail : ""}`;
    return li;
  }));
}
setInterval(showChecklist, 2000);

window.injectctl = { api, $, control, refreshInjection, showChecklist, token };
fetch(`${api}/state`).then((r) => r.json()).then(showState);
showChecklist();
connect();
