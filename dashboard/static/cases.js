// Sign-in, the catalogs' selects, and the case: subject and cycle, lesions with drugs in
// their order, drugs prepared, the checklist ticked by name, and "Use" to fill the
// injection form with a lesion's next step. Every change goes to the server, which says
// why when the plan does not allow it; what is shown is read back from it.
"use strict";
(() => {
const { api, $, control } = window.injectctl;
const authed = async (path) => {
  const token = sessionStorage.getItem("injectctl-token");
  if (!token) return null;
  const r = await fetch(api + path, { headers: { Authorization: "Bearer " + token } });
  return r.ok ? r.json() : null;
};
const td = (content) => { const c = document.createElement("td"); c.append(content ?? ""); return c; };
let caseNow = null;

// ---------------------------------------------------------------- who is signed in
async function showMe() {
  const me = await authed("/me");
  $("signed-in").textContent = me ? `${me.name} (${me.role})` : "";
}
$("signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  sessionStorage.setItem("injectctl-token", $("signin-token").value.trim());
  $("signin-token").value = "";
  await showMe();
  if (!$("signed-in").textContent) $("message").textContent = "sign-in refused: unknown token";
});

// ---------------------------------------------------------------- catalogs
async function fillSelects() {
  const catalog = await (await fetch(`${api}/catalog`)).json();
  for (const [name, entries] of [["syringe", catalog.syringes], ["needle", catalog.needles], ["drug", catalog.drugs]]) {
    const select = $("plan")[name];
    const keep = select.value;
    select.replaceChildren(...entries.map((e) => new Option(e.text, e.id)));
    select.value = keep;
  }
}

// ---------------------------------------------------------------- the case
const FIELDS = [["label", "text"], ["organ", "text"], ["size_mm", "number"], ["depth_mm", "number"],
  ["injected", "checkbox"], ["technique", "select"], ["volume_ml", "number"], ["aliquots", "number"],
  ["sectors", "number"], ["drugs", "text"], ["biopsy", "checkbox"]];
const DEFAULTS = { aliquots: 1, sectors: 4, technique: "radial", volume_ml: 0, injected: true, biopsy: false };
function lesionRow(lesion = {}) {
  const tr = document.createElement("tr");
  for (const [name, type] of FIELDS) {
    let input;
    if (type === "select") {
      input = document.createElement("select");
      for (const t of ["radial", "sequential"]) input.add(new Option(t, t));
    } else { input = document.createElement("input"); input.type = type; input.step = "any"; }
    input.name = name;
    const value = lesion[name] ?? DEFAULTS[name] ?? "";
    if (type === "checkbox") input.checked = value;
    else input.value = Array.isArray(value) ? value.join(", ") : value;
    tr.append(td(input));
  }
  $("lesion-editor").tBodies[0].append(tr);
}
function editedLesions() {
  return [...$("lesion-editor").tBodies[0].rows].map((tr) => {
    const lesion = {};
    for (const input of tr.querySelectorAll("input, select")) {
      lesion[input.name] = input.type === "checkbox" ? input.checked
        : input.type === "number" ? Number(input.value)
        : input.name === "drugs" ? input.value.split(",").map((d) => d.trim()).filter(Boolean) : input.value;
    }
    return lesion;
  });
}

function nextStep(lesion) {
  if (!lesion.injected) return "not injected (watched)";
  if (lesion.next) return `cycle ${lesion.next.cycle}, sector ${lesion.next.sector} of ${lesion.sectors}`;
  return `${lesion.aliquots} aliquot(s): ${lesion.aliquots_ml.map((v) => v.toFixed(2)).join(" + ")} mL`;
}
function useLesion(lesion) {
  const form = $("plan");
  form.case_id.value = caseNow.id;
  form.lesion.value = lesion.label;
  form.target.value = lesion.label;
  form.volume_ml.value = lesion.remaining_ml.toFixed(3);
  form.aliquots.value = lesion.technique === "radial" ? lesion.aliquots : 1;
  form.cycle.value = lesion.next ? lesion.next.cycle : "";
  form.sector.value = lesion.next ? lesion.next.sector : "";
  form.drug.value = lesion.drugs.find((d) => !lesion.drugs_given.includes(d)) || lesion.drugs[0];
  $("case-lesion").hidden = false;
  $("case-lesion").textContent = `Case ${caseNow.subject} cycle ${caseNow.cycle}: lesion ${lesion.label}, ${nextStep(lesion)}`;
  document.querySelector("[data-tab=inject]").click();
}

function showCase(found) {
  caseNow = found;
  if (!found) return;
  sessionStorage.setItem("injectctl-case", found.id);
  $("case-title").textContent = `${found.subject}, cycle ${found.cycle}: ${found.status}`;
  showImaging(found);
  const lesions = found.plan ? found.plan.lesions : [];
  if (!$("lesion-editor").tBodies[0].rows.length) lesions.forEach(lesionRow);
  $("case-lesions").tBodies[0].replaceChildren(...lesions.map((l) => {
    const tr = document.createElement("tr");
    const warn = l.warnings.length ? ` ⚠ ${l.warnings.join("; ")}` : "";
    const use = document.createElement("button");
    use.type = "button"; use.textContent = "Use"; use.onclick = () => useLesion(l);
    tr.append(td(l.label + warn), td(`${l.delivered_ml.toFixed(3)} / ${l.volume_ml} mL`),
      td(l.drugs.map((d) => (l.drugs_given.includes(d) ? "✓ " : "") + d).join(" → ")), td(nextStep(l)),
      td(l.injected && l.remaining_ml > 0 ? use : ""));
    return tr;
  }));
  const planned = [...new Set(lesions.flatMap((l) => l.drugs))];
  const prep = $("prep-drug");
  if (prep.options.length !== planned.length) prep.replaceChildren(...planned.map((d) => new Option(d, d)));
  $("case-drugs").replaceChildren(...found.drugs.map((d) => {
    const li = document.createElement("li");
    li.textContent = `${d.drug} lot ${d.lot}, ${d.prepared_volume_ml} mL, prepared ${d.prepared_utc.slice(11, 16)} UTC`;
    return li;
  }));
  $("case-checklist").replaceChildren(...found.checklist.map((item) => {
    const li = document.createElement("li");
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox"; box.checked = item.done; box.dataset.item = item.item;
    box.onchange = async () => showCase(await control(`/cases/${found.id}/checklist`, { item: item.item, done: box.checked }) || found);
    const who = document.createElement("small");
    who.textContent = item.by ? ` ${item.by}, ${item.at.slice(11, 16)} UTC` : "";
    label.append(box, ` ${item.phase}: ${item.text}`, who);
    li.append(label);
    return li;
  }));
}
// ---------------------------------------------------------------- imaging
function showImaging(found) {
  const labels = (found.plan ? found.plan.lesions : []).map((l) => l.label);
  const select = $("image-lesion");
  if (select.options.length !== labels.length) select.replaceChildren(...labels.map((l) => new Option(l, l)));
  $("case-imaging").replaceChildren(...[...found.imaging, ...found.imaging_reports].map((x) => {
    const li = document.createElement("li");
    li.textContent = x.role ? `${x.lesion}: ${x.role}, series ${x.series_uid}${x.sop_instance_uid ? " image " + x.sop_instance_uid : ""} (${x.by})`
      : `procedure report in the archive: ${x.sop_instance_uid} (${x.by}, ${x.at.slice(11, 16)} UTC)`;
    return li;
  }));
}
async function findStudies() {
  if (!caseNow) { $("message").textContent = "open a case first"; return; }
  const token = sessionStorage.getItem("injectctl-token") || "";
  const r = await fetch(`${api}/cases/${caseNow.id}/studies`, { headers: { Authorization: "Bearer " + token } });
  const body = await r.json();
  if (!r.ok) { $("message").textContent = `archive: ${body.detail}`; return; }
  if (!body.length) $("message").textContent = `no studies of ${caseNow.subject} in the archive`;
  $("case-studies").tBodies[0].replaceChildren(...body.flatMap((study) => study.series.map((series) => {
    const tr = document.createElement("tr");
    const choose = ["baseline", "needle-in-place"].map((role) => {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = role; b.dataset.series = series.series_uid;
      b.onclick = async () => showCase(await control(`/cases/${caseNow.id}/imaging`, {
        lesion: $("image-lesion").value, role, study_uid: series.study_uid,
        series_uid: series.series_uid, description: series.description }) || caseNow);
      return b;
    });
    tr.append(td(study.date), td(series.description), td(series.modality), td(String(series.instances ?? "")));
    const cell = td(); cell.append(...choose); tr.append(cell);
    return tr;
  })));
}
$("find-studies").onclick = findStudies;
// the exports need the token, which a plain link cannot carry: fetched, then opened
async function openExport(event, format) {
  event.preventDefault();
  if (!caseNow) return;
  const token = sessionStorage.getItem("injectctl-token") || "";
  const r = await fetch(`${api}/cases/${caseNow.id}/export?format=${format}`, { headers: { Authorization: "Bearer " + token } });
  if (!r.ok) { $("message").textContent = `report: ${r.status} ${(await r.json().catch(() => ({}))).detail || ""}`; return; }
  window.open(URL.createObjectURL(await r.blob()), "_blank");
}
$("case-report").onclick = (event) => openExport(event, "html");
$("case-pdf").onclick = (event) => openExport(event, "pdf");
$("write-sr").onclick = async () => {
  if (!caseNow) return;
  const stored = await control(`/cases/${caseNow.id}/imaging/report`, {});
  if (stored) { $("message").textContent = `report stored in the archive: ${stored.sop_instance_uid}`; loadCase(); }
};

async function loadCase() {
  const id = sessionStorage.getItem("injectctl-case");
  if (id) showCase(await authed(`/cases/${id}`));
}

$("case-open").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = $("case-open");
  const body = { subject: form.subject.value.trim(), cycle: Number(form.cycle.value) };
  if (form.study.value) body.study = form.study.value;
  $("lesion-editor").tBodies[0].replaceChildren();
  showCase(await control("/cases", body));
  if (!$("lesion-editor").tBodies[0].rows.length) lesionRow();
});
$("add-lesion").onclick = () => lesionRow({ injected: false });
$("save-case-plan").onclick = async () => {
  if (!caseNow) { $("message").textContent = "open a case first"; return; }
  const saved = await control(`/cases/${caseNow.id}/plan`, { lesions: editedLesions() }, "PUT");
  if (saved) { showCase(saved); $("message").textContent = "case plan saved"; }
};
$("prep-save").onclick = async () => {
  if (!caseNow) return;
  const body = { drug: $("prep-drug").value, lot: $("prep-lot").value.trim(),
    prepared_utc: new Date().toISOString(), prepared_volume_ml: Number($("prep-volume").value) };
  showCase(await control(`/cases/${caseNow.id}/drugs`, body) || caseNow);
};
document.querySelector("[data-tab=case]").addEventListener("click", loadCase);
setInterval(() => { if (!$("panel-case").hidden) loadCase(); }, 3000);

fillSelects();
showMe();
})();
