// The alarm's signals on the operator's page (issue 21), per IEC 60601-1-8:
// - visual: the banner's colour and flashing by priority (style.css), kept while silenced;
// - audible: the standard's bursts through the Web Audio API, high 10 pulses, medium 3,
//   low 2, repeated; each pulse a tone with harmonics, rising and falling in 20 ms;
// - silence: audio paused for the server's silence time (120 s), re-armed by itself and at
//   once by a new alarm; recorded on the server with who silenced;
// - escalation: a medium or low alarm nobody has silenced or acknowledged within
//   ESCALATE_S sounds as high;
// - pre-alarms (the server's, unlatched) in their own strip, sounding by their priority;
// - an optional pressure tone whose pitch follows the line pressure against its limit.
"use strict";
(() => {
  const { $, control } = window.injectctl;
  // pulse onsets (s) in a burst, pulse length, burst period (onset to onset), pitch
  const PATTERNS = {
    // 3 + 2, pause, 3 + 2: pulses 150 ms, 100 ms apart; 350 ms between 3rd and 4th, 8th and
    // 9th (2x + td); 700 ms between 5th and 6th; 4 s silence after the burst
    high: { onsets: [0, 0.25, 0.5, 1.0, 1.25, 2.1, 2.35, 2.6, 3.1, 3.35], pulse: 0.15, period: 7.5, hz: 523 },
    // 3 pulses of 200 ms, 200 ms apart; 6 s silence
    medium: { onsets: [0, 0.4, 0.8], pulse: 0.2, period: 7.0, hz: 440 },
    // 2 pulses, repeated every 20 s (more than 15 s)
    low: { onsets: [0, 0.4], pulse: 0.2, period: 20.0, hz: 392 },
  };
  const RANK = { high: 0, medium: 1, low: 2 };
  const ESCALATE_S = 60;
  const TICK_MS = 250;

  let audio = null, wave = null, tone = null, toneHz = null;
  let alarm = null, preAlarms = [];
  let silencedUntil = 0, silencedKey = null, nextBurstAt = 0, sounding = null;
  let alarmSince = 0, alarmKey = null;

  function context() {
    if (!audio) {
      const Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) { notice("sound", "this browser has no Web Audio: alarms are visual only"); return null; }
      audio = new Context();
      // fundamental and four harmonics, as the standard asks, falling off
      wave = audio.createPeriodicWave(new Float32Array([0, 0, 0, 0, 0, 0]),
                                      new Float32Array([0, 1, 0.5, 0.35, 0.25, 0.2]));
      audio.onstatechange = soundNotice;
    }
    if (audio.state === "suspended") audio.resume().catch(() => {});
    soundNotice();
    return audio;
  }
  function soundNotice() {
    notice("sound", audio.state === "running" ? "" : "Alarm sound is off until you click or tap the page");
  }
  // the browser lets sound start only after a gesture: any click or key enables it
  for (const type of ["pointerdown", "keydown"]) document.addEventListener(type, () => context(), { capture: true });

  function notice(id, text) {
    let item = document.querySelector(`#notices [data-notice="${id}"]`);
    if (!text) { if (item) item.remove(); return; }
    if (!item) { item = document.createElement("p"); item.dataset.notice = id; $("notices").append(item); }
    item.textContent = text;
  }

  function burst(priority) {
    const ctx = context();
    if (!ctx) return;
    const pattern = PATTERNS[priority];
    const at = ctx.currentTime + 0.05;
    for (const onset of pattern.onsets) {
      const oscillator = ctx.createOscillator();
      const gain = ctx.createGain();
      oscillator.setPeriodicWave(wave);
      oscillator.frequency.value = pattern.hz;
      const start = at + onset, end = start + pattern.pulse;
      gain.gain.setValueAtTime(0, start);
      gain.gain.linearRampToValueAtTime(0.4, start + 0.02);
      gain.gain.setValueAtTime(0.4, end - 0.02);
      gain.gain.linearRampToValueAtTime(0, end);
      oscillator.connect(gain).connect(ctx.destination);
      oscillator.start(start);
      oscillator.stop(end);
    }
  }

  // what sounds now: the latched alarm (escalated if unseen), else the loudest pre-alarm
  function soundingPriority(nowMs) {
    if (alarm) {
      if (alarm.priority !== "high" && (nowMs - alarmSince) / 1000 >= ESCALATE_S) return "high";
      return alarm.priority;
    }
    const ranked = preAlarms.map((p) => p.priority).sort((a, b) => RANK[a] - RANK[b]);
    return ranked[0] || null;
  }

  function tick() {
    const now = Date.now();
    const priority = soundingPriority(now);
    const silenced = now < silencedUntil;
    const left = Math.ceil((silencedUntil - now) / 1000);
    $("alarm-silenced").hidden = !silenced;
    $("alarm-silenced").textContent = silenced ? `sound paused ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}` : "";
    $("alarm").dataset.escalated = alarm && priority === "high" && alarm.priority !== "high" ? "true" : "false";
    if (!priority || silenced) { sounding = null; return; }
    if (priority !== sounding || now >= nextBurstAt) {
      sounding = priority;
      nextBurstAt = now + PATTERNS[priority].period * 1000;
      burst(priority);
    }
  }
  setInterval(tick, TICK_MS);
  context();  // at once: a page whose browser holds the sound back says so before any alarm

  function show(state) {
    const latched = state.alarms && state.alarms[0];
    const key = latched ? `${latched.kind}|${latched.detail}` : null;
    if (key !== alarmKey) {  // a new alarm: seen from now, and it sounds even if silenced
      alarmKey = key;
      alarmSince = Date.now();
      if (key && key !== silencedKey) silencedUntil = 0;
    }
    alarm = latched || null;
    $("alarm").hidden = !alarm;
    if (alarm) {
      $("alarm").dataset.priority = alarm.priority || "high";
      $("alarm-kind").textContent = alarm.kind.replaceAll("_", " ").toUpperCase() + ":";
      $("alarm-detail").textContent = alarm.detail;
    }
    preAlarms = state.pre_alarms || [];
    $("pre-alarms").replaceChildren(...preAlarms.map((p) => {
      const item = document.createElement("p");
      item.className = "pre-alarm";
      item.dataset.priority = p.priority;
      item.dataset.kind = p.kind;
      item.textContent = p.detail;
      return item;
    }));
    tick();
  }

  async function silence() {
    const answer = await control("/alarms/silence");
    if (!answer) return;
    silencedUntil = Date.now() + answer.silenced_s * 1000;
    silencedKey = alarmKey;
    alarmSince = silencedUntil;  // seen: escalation counts again from when the sound returns
    tick();
  }
  $("silence").onclick = silence;

  // the pressure tone: 220 Hz at zero to 880 Hz at the limit, quiet, continuous
  function pressure(mmHg, limitMmHg) {
    if (!$("pressure-tone").checked || mmHg == null) {
      if (tone) { tone.stop(); tone = null; toneHz = null; }
      return;
    }
    const ctx = context();
    if (!ctx) return;
    if (!tone) {
      tone = ctx.createOscillator();
      const gain = ctx.createGain();
      gain.gain.value = 0.05;
      tone.connect(gain).connect(ctx.destination);
      tone.start();
    }
    const share = Math.max(0, Math.min(1.2, mmHg / limitMmHg));
    toneHz = 220 * Math.pow(4, share);
    tone.frequency.setTargetAtTime(toneHz, ctx.currentTime, 0.05);
  }

  window.alarmSignals = { show, pressure, notice, PATTERNS, ESCALATE_S, toneHz: () => toneHz };
})();
