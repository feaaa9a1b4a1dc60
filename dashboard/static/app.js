// The operator page. Everything shown comes from the server (state, injection, telemetry),
// so a reload loses nothing. Control calls carry the signed-in person's token (kept for the
// browser session); STOP never waits for one (issue 21).
"use strict";
const api = "/api/v1";
const $ = (id) => document.getElementById(id);
let current = null;   // the injection shown
let limit = 900;
const WINDOW_S = 30;
const times = [], values = [];

function token() { return sessionStorage.getItem("injectctl-token") || ""; }

// a credential refused: forget it and ask for it again, without blocking anything
function askToSignIn(why) {
  sessionStorage.removeItem("injectctl-token");
  $("signed-in").textContent = "";
  $("message").textContent = `${why}: sign in again`;
  $("signin-token").focus();
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
  $("message").textContent = response.ok ? "" : `${response.status}: ${describe(data.detail)}`;
  if (response.status === 401) askToSignIn("your credential was not accepted");
  return response.ok ? data : null;
}

function chartWidth() { return Math.max(300, document.querySelector(".live").clientWidth - 10); }
if (!window.uPlot) {
  $("notices").insertAdjacentHTML("beforeend", "<p data-notice=\"uplot\">The pressure chart's library (uPlot) did not load: the trend is not drawn. The numbers, bar and alarms still work; reinstall injectctl.</p>");
}
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
  const now = message.p.length ? message.p[message.p.length - 1] : null;
  $("pressure").textContent = now == null ? "--" : now.toFixed(1);
  showPressureBar(now);
  if (window.alarmSignals) window.alarmSignals.pressure(now, limit);
  if (chart) {
    const t0 = times.length ? times[times.length - 1] : 0;
    chart.setData([times.map((t) => t - t0), values, values.map(() => limit)]);
  }
}

function showState(state) {
  $("state-badge").textContent = state.state;
  $("state-badge").dataset.state = state.state;
  $("line-settling").hidden = state.line_settled !== false || state.state === "running";
  if (window.alarmSignals) window.alarmSignals.show(state);
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
  drawClockFace(current);
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
// STOP: one request that no credential can block; it names the person when the token is known
// (tried twice; a STOP that did not reach the controller says so, never silently)
async function stop() {
  const t = token();
  let response = null;
  for (let attempt = 0; attempt < 2 && !response; attempt++) {
    response = await fetch(`${api}/stop`, {
      method: "POST", headers: t ? { "Authorization": "Bearer " + t } : {},
    }).catch(() => null);
  }
  if (!response || response.status >= 500) {
    $("message").textContent = "STOP DID NOT REACH THE CONTROLLER: use the pump's own stop key";
    return;
  }
  const data = await response.json().catch(() => ({}));
  $("message").textContent = response.ok ? (data.stopped ? "stopped" : "nothing was running") : `STOP: ${response.status} ${describe(data.detail)}`;
  if (data.stopped) refreshInjection(data.stopped);
  if (response.ok && !data.identified && (t || data.stopped)) {
    askToSignIn(t ? `${data.stopped ? "stopped" : "nothing was running"}; your credential was not recognised` : "stopped; you are not signed in");
  }
}
$("stop").onclick = stop;
document.addEventListener("keydown", (event) => { if (event.key === "Escape") stop(); });

// the pressure bar: the line pressure against its limit, with the limit's tick
function showPressureBar(mmHg) {
  const scale = limit * 1.25;
  const share = mmHg == null ? 0 : Math.max(0, Math.min(1, mmHg / scale));
  $("pressure-fill").style.width = `${(share * 100).toFixed(1)}%`;
  $("pressure-fill").dataset.zone = mmHg == null ? "none" : mmHg >= limit * 0.9 ? "high" : mmHg >= limit * 0.7 ? "near" : "ok";
  $("limit-tick").style.left = `${(100 / 1.25).toFixed(1)}%`;
}

// the lesion as a clock face: radial aliquots as its sectors (done, now, to come), or the
// sequential technique's sector of this cycle
function drawClockFace(injection) {
  const parts = injection.fills_ml.length > 1 ? injection.fills_ml.length
    : injection.sector ? Math.max(4, injection.sector) : 1;
  const now = injection.fills_ml.length > 1
    ? injection.events.filter((e) => e.kind === "resumed").length : (injection.sector || 1) - 1;
  const wedges = [];
  for (let k = 0; k < parts; k++) {
    const a0 = (k / parts) * 2 * Math.PI - Math.PI / 2, a1 = ((k + 1) / parts) * 2 * Math.PI - Math.PI / 2;
    const p = (a) => `${(45 * Math.cos(a)).toFixed(2)} ${(45 * Math.sin(a)).toFixed(2)}`;
    const done = injection.fills_ml.length > 1 ? k < now || injection.state === "completed" : false;
    const state = k === now && !done ? "now" : done ? "done" : "next";
    wedges.push(parts === 1 ? `<circle r="45" data-part="${injection.state === "completed" ? "done" : "now"}"/>`
      : `<path data-part="${state}" d="M0 0 L${p(a0)} A45 45 0 0 1 ${p(a1)} Z"/>`);
  }
  $("clock-face").innerHTML = wedges.join("");
  $("clock-label").textContent = injection.fills_ml.length > 1
    ? `aliquot ${Math.min(now + 1, parts)} of ${parts}` : injection.sector ? `cycle ${injection.cycle || "-"}, sector ${injection.sector}` : "";
}

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

window.injectctl = { api, $, control, refreshInjection, showChecklist, token, askToSignIn };
fetch(`${api}/state`).then((r) => r.json()).then(showState);
showChecklist();
connect();
