// The kiosk app. It talks only to the kiosk agent that served it (same
// origin, loopback); the agent holds the credential and the durable outbox.
// Network trouble between the agent and the server never reaches this page,
// and trouble reaching the agent itself is retried silently.
"use strict";

const T = {
  vi: {
    lang: "English", bigger: "Chữ lớn", contrast: "Tương phản",
    attractTitle: "Bạn có hài lòng với dịch vụ hôm nay?",
    attractSub: "Xin dành 2 phút cho vài câu hỏi ngắn. Ý kiến của bạn giúp chúng tôi phục vụ tốt hơn.",
    start: "Chạm để bắt đầu",
    anonymous: "Phiếu khảo sát không ghi tên. Chạm vào khuôn mặt để trả lời.",
    unavailableTitle: "Máy khảo sát tạm ngừng",
    unavailableSub: "Xin cảm ơn, mời bạn quay lại sau.",
    progress: (i, n) => `Câu ${i} / ${n}`,
    back: "Quay lại", skip: "Bỏ qua",
    reviewTitle: "Bạn đã trả lời xong",
    reviewCount: (a, n) => `Bạn đã trả lời ${a} trên ${n} câu. Chạm “Gửi ý kiến” để hoàn thành.`,
    submit: "Gửi ý kiến",
    saving: "Đang lưu ý kiến của bạn…",
    thanksTitle: "Xin cảm ơn!",
    thanksSub: "Ý kiến của bạn đã được ghi nhận.",
    done: "Xong",
    pinTitle: "Nhập mã PIN của cán bộ vận hành", cancel: "Hủy", pinWrong: "Mã PIN không đúng",
    opTitle: "Màn hình vận hành", opDead: "Phiếu bị từ chối (dead letters)", opTest: "Gửi phiếu thử",
    opRefresh: "Làm mới", opExit: "Thoát", opNoDead: "Không có",
    opQueue: "Phiếu chờ gửi", opOldest: "Phiếu chờ lâu nhất", opLastSend: "Gửi thành công lần cuối",
    opServer: "Máy chủ", opReachable: "kết nối được", opUnreachable: "không kết nối được",
    opVersion: "Phiên bản", opClock: "Lệch đồng hồ", opQuestionnaire: "Phiếu khảo sát", opNever: "chưa có",
    opTestQueued: id => `Đã xếp phiếu thử ${id} vào hàng gửi.`, opUnknown: "chưa đo",
  },
  en: {
    lang: "Tiếng Việt", bigger: "Larger text", contrast: "Contrast",
    attractTitle: "Were you satisfied with our service today?",
    attractSub: "Please take 2 minutes for a few short questions. Your opinion helps us serve you better.",
    start: "Touch to start",
    anonymous: "This survey is anonymous. Touch a face to answer.",
    unavailableTitle: "This survey kiosk is paused",
    unavailableSub: "Thank you, please come back later.",
    progress: (i, n) => `Question ${i} of ${n}`,
    back: "Back", skip: "Skip",
    reviewTitle: "You have finished",
    reviewCount: (a, n) => `You answered ${a} of ${n} questions. Touch “Send” to finish.`,
    submit: "Send",
    saving: "Saving your answers…",
    thanksTitle: "Thank you!",
    thanksSub: "Your opinion has been recorded.",
    done: "Done",
    pinTitle: "Operator PIN", cancel: "Cancel", pinWrong: "Wrong PIN",
    opTitle: "Operator screen", opDead: "Refused responses (dead letters)", opTest: "Send a test response",
    opRefresh: "Refresh", opExit: "Exit", opNoDead: "None",
    opQueue: "Waiting to send", opOldest: "Oldest waiting", opLastSend: "Last successful send",
    opServer: "Server", opReachable: "reachable", opUnreachable: "not reachable",
    opVersion: "Version", opClock: "Clock offset", opQuestionnaire: "Questionnaire", opNever: "none yet",
    opTestQueued: id => `Test response ${id} queued.`, opUnknown: "not measured",
  },
};

const S = {
  cfg: null, lang: "vi", big: 0, contrast: false,
  session: null, answers: {}, index: 0, started: 0,
  screen: "attract", idleTimer: null, thanksTimer: null, opToken: "", pin: "",
};

const $ = id => document.getElementById(id);
const t = key => T[S.lang][key];
const sleep = ms => new Promise(r => setTimeout(r, ms));

// api calls the agent. Writes carry X-Kiosk so that no other page can make them.
async function api(method, path, body, extra) {
  const headers = { "X-Kiosk": "1" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  Object.assign(headers, extra || {});
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  const data = await r.json().catch(() => ({}));
  return { ok: r.ok, status: r.status, data };
}

// persist retries a write until the agent has stored it: the agent may be
// restarting. The citizen sees only the saving screen meanwhile.
async function persist(path, body) {
  let delay = 300;
  for (;;) {
    try {
      const r = await api("POST", path, body);
      if (r.ok || r.status === 400) return r;
    } catch (e) { /* the agent is restarting: try again */ }
    await sleep(delay);
    delay = Math.min(delay * 2, 3000);
  }
}

// ---- faces -------------------------------------------------------------
const FACE_MOUTH = {
  1: "M30 72 Q50 52 70 72", 2: "M32 70 Q50 60 68 70", 3: "M32 66 L68 66",
  4: "M32 62 Q50 74 68 62", 5: "M28 58 Q50 84 72 58",
};
function face(level) {
  const brow = level === 1 ? '<path d="M28 30 L42 36 M72 30 L58 36" stroke="var(--face-ink)" stroke-width="4" stroke-linecap="round"/>' : "";
  return `<svg viewBox="0 0 100 100" role="img" aria-hidden="true"><circle cx="50" cy="50" r="46" fill="var(--f${level})"/>` +
    `<circle cx="35" cy="42" r="6" fill="var(--face-ink)"/><circle cx="65" cy="42" r="6" fill="var(--face-ink)"/>${brow}` +
    `<path d="${FACE_MOUTH[level]}" fill="none" stroke="var(--face-ink)" stroke-width="6" stroke-linecap="round"/></svg>`;
}
// faceLevel maps the i-th of n scale codes onto the five faces.
const faceLevel = (i, n) => (n <= 1 ? 3 : 1 + Math.round((i * 4) / (n - 1)));

// ---- screens -----------------------------------------------------------
function show(name) {
  S.screen = name;
  document.querySelectorAll(".screen").forEach(s => s.classList.toggle("active", s.dataset.screen === name));
  document.body.dataset.screen = name;
  armIdle();
  render();
}

function render() {
  document.documentElement.lang = S.lang;
  document.querySelectorAll("[data-t]").forEach(el => {
    const v = T[S.lang][el.dataset.t];
    if (typeof v === "string") el.textContent = v;
  });
  if (S.screen === "question") renderQuestion();
  if (S.screen === "review") {
    const n = S.cfg.form.items.length;
    $("review-count").textContent = t("reviewCount")(Object.keys(S.answers).length, n);
  }
  if (S.screen === "operator") renderOperator();
}

function label(o, base) { return (S.lang === "en" && o[base + "_en"]) ? o[base + "_en"] : o[base + "_vi"]; }

function renderQuestion() {
  const items = S.cfg.form.items, it = items[S.index], n = items.length;
  $("progress-text").textContent = t("progress")(S.index + 1, n);
  $("progress").setAttribute("aria-valuenow", String(S.index + 1));
  $("progress").setAttribute("aria-valuemax", String(n));
  $("progress-fill").style.width = `${(100 * (S.index + 1)) / n}%`;
  $("part").textContent = label(S.cfg.form, "part");
  $("question").textContent = label(it, "label");
  const box = $("choices");
  box.innerHTML = "";
  // The best answer first, as counter tablets show it.
  const scale = it.scale.map((c, i) => ({ c, level: faceLevel(i, it.scale.length) })).reverse();
  for (const { c, level } of scale) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "choice" + (S.answers[it.code] === c.code ? " selected" : "");
    b.dataset.code = String(c.code);
    b.innerHTML = face(level);
    const span = document.createElement("span");
    span.className = "label";
    span.textContent = label(c, "label");
    b.appendChild(span);
    b.addEventListener("click", () => choose(it.code, c.code));
    box.appendChild(b);
  }
  $("back").style.visibility = "visible";
}

function renderOperator() {
  const st = S.opStatus;
  const dl = $("op-status");
  dl.innerHTML = "";
  if (!st) return;
  const fmtAge = s => (s < 60 ? `${Math.round(s)} s` : s < 3600 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);
  const when = v => (v ? new Date(v).toLocaleString(S.lang === "vi" ? "vi-VN" : "en-GB") : t("opNever"));
  const rows = [
    [t("opQueue"), String(st.queue_depth)],
    [t("opOldest"), st.queue_depth ? fmtAge(st.oldest_pending_seconds) : "—"],
    [t("opLastSend"), when(st.last_send)],
    [t("opServer"), st.server_reachable ? t("opReachable") : t("opUnreachable")],
    [t("opClock"), st.clock_offset_known ? `${st.clock_offset_seconds.toFixed(1)} s` : t("opUnknown")],
    [t("opVersion"), st.version],
    [t("opQuestionnaire"), st.questionnaire_id + (st.questionnaire_problem ? ` (${st.questionnaire_problem})` : "")],
  ];
  for (const [k, v] of rows) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    dl.append(dt, dd);
  }
  const ul = $("op-dead");
  ul.innerHTML = "";
  if (!st.dead_letters.length) {
    const li = document.createElement("li"); li.textContent = t("opNoDead"); ul.appendChild(li);
  }
  for (const d of st.dead_letters) {
    const li = document.createElement("li");
    li.textContent = `${d.response_id} · ${d.code}: ${d.reason} (${when(d.failed_at)})`;
    ul.appendChild(li);
  }
}

// ---- the questionnaire -------------------------------------------------
async function loadConfig() {
  for (;;) {
    try {
      const r = await api("GET", "/api/form");
      if (r.ok) { S.cfg = r.data; return; }
    } catch (e) { /* the agent is starting */ }
    await sleep(1000);
  }
}

async function begin() {
  await loadConfig(); // a new questionnaire version shows from the next citizen on
  if (!S.cfg.ready) { show("unavailable"); setTimeout(home, 30000); return; }
  let r;
  for (;;) {
    try { r = await api("POST", "/api/start", {}); if (r.ok) break; } catch (e) { /* retry */ }
    await sleep(1000);
  }
  S.session = r.data.session;
  S.answers = {};
  S.index = 0;
  S.started = performance.now();
  show("question");
}

function choose(code, value) {
  S.answers[code] = value;
  renderQuestion();
  setTimeout(() => { if (S.screen === "question" && S.cfg.form.items[S.index].code === code) next(); }, 250);
}

function next() {
  if (S.index + 1 < S.cfg.form.items.length) { S.index++; renderQuestion(); armIdle(); }
  else show("review");
}

function back() {
  if (S.screen === "review") { S.index = S.cfg.form.items.length - 1; show("question"); return; }
  if (S.index > 0) { S.index--; renderQuestion(); } else { abandon(); }
}

function skip() { delete S.answers[S.cfg.form.items[S.index].code]; next(); }

async function submit() {
  show("saving");
  const body = { session: S.session, answers: S.answers, elapsed_ms: Math.round(performance.now() - S.started) };
  await persist("/api/finish", body); // stored in the agent's outbox before thanking
  S.session = null;
  show("thanks");
}

// abandon ends the current questionnaire (idle reset or back from the first
// question); the agent sends or discards the partial answers as configured.
function abandon() {
  if (S.session) {
    const body = { session: S.session, answers: S.answers, elapsed_ms: Math.round(performance.now() - S.started) };
    persist("/api/abandon", body);
  }
  S.session = null;
  home();
}

function home() {
  S.answers = {}; S.index = 0; S.opToken = ""; S.pin = "";
  S.lang = "vi"; S.big = 0; S.contrast = false; applyLook();
  show("attract");
}

// ---- idle reset --------------------------------------------------------
function armIdle() {
  clearTimeout(S.idleTimer);
  clearTimeout(S.thanksTimer);
  if (!S.cfg) return;
  if (S.screen === "thanks") { S.thanksTimer = setTimeout(home, S.cfg.thank_you_seconds * 1000); return; }
  if (["question", "review", "pin", "operator", "unavailable"].includes(S.screen)) {
    S.idleTimer = setTimeout(() => { if (S.screen === "question" || S.screen === "review") abandon(); else home(); },
      S.cfg.idle_seconds * 1000);
  }
}

// ---- look --------------------------------------------------------------
function applyLook() {
  const h = document.documentElement;
  h.classList.toggle("big1", S.big === 1);
  h.classList.toggle("big2", S.big === 2);
  h.classList.toggle("contrast", S.contrast);
  $("bigger").setAttribute("aria-pressed", String(S.big > 0));
  $("contrast").setAttribute("aria-pressed", String(S.contrast));
}

// ---- operator ----------------------------------------------------------
// The operator screen opens after holding the top-left corner of the attract
// screen for three seconds, then a PIN.
function setupCorner() {
  let timer = null;
  const c = $("corner");
  const cancel = () => { clearTimeout(timer); timer = null; };
  c.addEventListener("pointerdown", e => { e.preventDefault(); cancel(); timer = setTimeout(() => { timer = null; if (S.cfg && S.cfg.operator) openPin(); }, 3000); });
  ["pointerup", "pointercancel", "pointerleave"].forEach(ev => c.addEventListener(ev, cancel));
}

function openPin() { S.pin = ""; $("pin-error").textContent = ""; renderPin(); show("pin"); }
function renderPin() { $("pin-dots").innerHTML = "<span></span>".repeat(S.pin.length); }

function setupPinpad() {
  const pad = $("pinpad");
  for (const k of ["1", "2", "3", "4", "5", "6", "7", "8", "9", "⌫", "0", "OK"]) {
    const b = document.createElement("button");
    b.type = "button"; b.textContent = k; b.dataset.key = k;
    b.addEventListener("click", () => pinKey(k));
    pad.appendChild(b);
  }
}

async function pinKey(k) {
  if (k === "⌫") S.pin = S.pin.slice(0, -1);
  else if (k === "OK") {
    const r = await api("POST", "/api/operator/login", { pin: S.pin }).catch(() => ({ ok: false }));
    S.pin = "";
    if (!r.ok) { $("pin-error").textContent = t("pinWrong"); renderPin(); return; }
    S.opToken = r.data.token;
    await refreshOperator();
    show("operator");
    const timer = setInterval(() => { if (S.screen === "operator") refreshOperator(); else clearInterval(timer); }, 5000);
    return;
  } else if (S.pin.length < 12) S.pin += k;
  $("pin-error").textContent = "";
  renderPin();
}

async function refreshOperator() {
  const r = await api("GET", "/api/operator/status", undefined, { "X-Operator": S.opToken }).catch(() => ({ ok: false }));
  if (r.ok) S.opStatus = r.data;
  if (S.screen === "operator") renderOperator();
}

async function operatorTest() {
  const r = await api("POST", "/api/operator/test", {}, { "X-Operator": S.opToken }).catch(() => ({ ok: false }));
  $("op-result").textContent = r.ok ? t("opTestQueued")(r.data.response_id) : (r.data && r.data.error) || "";
  await refreshOperator();
}

// ---- wiring ------------------------------------------------------------
function init() {
  $("attract-faces").innerHTML = [1, 2, 3, 4, 5].map(face).join("");
  $("thanks-face").innerHTML = face(5);
  $("start").addEventListener("click", begin);
  $("back").addEventListener("click", back);
  $("review-back").addEventListener("click", back);
  $("skip").addEventListener("click", skip);
  $("submit").addEventListener("click", submit);
  $("done").addEventListener("click", home);
  $("lang").addEventListener("click", () => { S.lang = S.lang === "vi" ? "en" : "vi"; render(); });
  $("bigger").addEventListener("click", () => { S.big = (S.big + 1) % 3; applyLook(); });
  $("contrast").addEventListener("click", () => { S.contrast = !S.contrast; applyLook(); });
  $("pin-cancel").addEventListener("click", home);
  $("op-test").addEventListener("click", operatorTest);
  $("op-refresh").addEventListener("click", refreshOperator);
  $("op-exit").addEventListener("click", home);
  setupCorner();
  setupPinpad();
  ["pointerdown", "keydown"].forEach(ev => document.addEventListener(ev, armIdle, true));
  document.addEventListener("contextmenu", e => e.preventDefault());
  loadConfig().then(() => { applyLook(); show(S.cfg.ready ? "attract" : "unavailable"); });
  render();
}

document.addEventListener("DOMContentLoaded", init);
