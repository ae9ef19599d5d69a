// Dashboard of the jobs transcription example: no framework, no build step.
// The job list is read from GET /api/jobs every few seconds; each job that
// is not finished gets a WebSocket (/ws/jobs/{id}) that pushes its progress
// and its output: for a transcription, one line per segment, so the
// transcript grows under the bar. A socket reopened after a drop asks for
// the lines after the last one shown (?after=), so none is lost or doubled.
// A long recording cut into chunks (APP_CHUNK_SECONDS) is one row, its
// merge job (the chunks' batch, which the list shows instead of them): its
// bar is the chunks' progress together while it waits for them, and its
// transcript arrives whole when the merge joins them.
// Each job shows its input (audio and language) and date; a long transcript
// or result is collapsed; a failed or canceled job can be retried (POST
// /api/jobs/{id}/retry: the same job runs again), and finished jobs
// can be cleared from the view (kept in localStorage, so a reload keeps
// them hidden). Every control is disabled while the server cannot be
// reached. The queues card is in queues.js.
// WebSockets are used rather than EventSource because browsers allow only six
// HTTP/1.1 connections per host, which a few open SSE streams would use up.
"use strict";

const $ = (sel) => document.querySelector(sel);
const terminal = new Set(["succeeded", "failed", "canceled"]);
const rows = new Map(); // job id → {el, job, ws, outSeq, txUser}
const POLL_MS = 3000;
const LONG_TRANSCRIPT = 8; // lines shown open; more are collapsed
const LONG_RESULT = 160; // characters shown whole; more are clamped
const CLEARED_KEY = "jobs.cleared";
let cleared = loadCleared(); // ids of finished jobs cleared from view

// api calls the JSON API; it throws an Error whose message is the server's
// (or a network) message. A 401 opens the sign-in dialog.
async function api(method, path, body, headers = {}) {
  const init = { method, headers: { ...headers }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    setConn("offline", "offline");
    throw new Error("The server cannot be reached.");
  }
  setConn("live", "live");
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    data = null;
  }
  if (!res.ok) {
    if (res.status === 401) showLogin();
    const err = new Error((data && data.message) || `Request failed (${res.status}).`);
    err.status = res.status;
    err.code = data && data.code;
    throw err;
  }
  return data;
}

// setConn shows whether the server answers; while it does not, every
// control of the page is disabled (the fieldset around them).
function setConn(state, text) {
  const el = $("#conn");
  el.dataset.state = state;
  el.textContent = text;
  $("#controls").disabled = state === "offline";
}

function showError(el, msg) {
  el.textContent = msg || "";
  el.hidden = !msg;
}

// --- job rows --------------------------------------------------------------

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function button(cls, text, onClick) {
  const b = el("button", cls, text);
  b.type = "button";
  b.addEventListener("click", () => onClick(b));
  return b;
}

// inputText describes a job's input: a transcription's audio and
// language, anything else as its JSON, shortened.
function inputText(job) {
  const p = job.payload;
  if (p && typeof p.audio_url === "string") return p.language ? `${p.audio_url} · ${p.language}` : p.audio_url;
  const s = JSON.stringify(p);
  return s && s.length > 60 ? s.slice(0, 60) + "…" : s || "";
}

function createRow(job) {
  const li = el("li", "job");
  li.dataset.id = job.id;
  const head = el("div", "head");
  const when = el("time", "when", new Date(job.created_at).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }));
  when.dateTime = job.created_at;
  head.append(el("span", "status"), el("span", "kind", job.kind), el("span", "input", inputText(job)));
  const chunks = chunkCount(job);
  if (chunks) { // a long recording, transcribed in chunks
    const c = el("span", "chunks", `${chunks} chunks`);
    c.title = "transcribed in chunks, joined in order";
    head.append(c);
  }
  if (job.concurrency_key) { // the "user" it was submitted for
    const user = el("span", "user", job.concurrency_key);
    user.title = "user";
    head.append(user);
  }
  head.append(when, el("span", "jid", job.id.slice(-12)));
  const actions = el("span", "actions");
  actions.append(button("cancel", "Cancel", (b) => cancelJob(job.id, b)),
    button("retry", "Retry", (b) => retryJob(job.id, b)));
  head.append(actions);
  const progress = el("div", "progress");
  const bar = el("div", "bar");
  bar.append(el("div", "fill"));
  progress.append(bar, el("span", "pct"), el("span", "msg"));
  const tx = el("details", "tx");
  tx.open = true;
  tx.hidden = true;
  const summary = el("summary");
  summary.append(el("span", "lines"), el("span", "last"));
  summary.addEventListener("click", () => { rows.get(job.id).txUser = true; });
  tx.append(summary, el("ol", "transcript"));
  const result = el("div", "result");
  result.hidden = true;
  result.append(el("span", "text"), button("more", "Show all", (b) => {
    const open = result.classList.toggle("expanded");
    b.textContent = open ? "Show less" : "Show all";
  }));
  const error = el("div", "error");
  error.hidden = true;
  li.append(head, progress, tx, result, error);
  return li;
}

// chunkCount is the number of chunks of a chunked recording's row (a
// batch: its jobs are its chunks), 0 for any other job.
function chunkCount(job) {
  return job.batch && job.depends_on ? job.depends_on.length : 0;
}

// lineText formats one output item: a transcription segment as
// "1.5–2.0 s  speech  275 Hz", anything else as its JSON.
function lineText(item) {
  if (item && typeof item.start === "number" && typeof item.text === "string") {
    const pitch = item.pitch_hz ? `  ${Math.round(item.pitch_hz)} Hz` : "";
    return `${item.start.toFixed(1)}–${item.end.toFixed(1)} s  ${item.text}${pitch}`;
  }
  return JSON.stringify(item);
}

// addOutput appends the job's next output item as a line of its
// transcript; an item the row already has is ignored.
function addOutput(id, seq, item) {
  const r = rows.get(id);
  if (seq <= r.outSeq) return;
  r.outSeq = seq;
  const list = r.el.querySelector(".transcript");
  const line = el("li", "line", lineText(item));
  line.dataset.seq = seq;
  list.append(line);
  list.scrollTop = list.scrollHeight;
  const tx = r.el.querySelector(".tx");
  tx.hidden = false;
  tx.querySelector(".lines").textContent = `Transcript · ${seq} ${seq === 1 ? "line" : "lines"}`;
  tx.querySelector(".last").textContent = line.textContent;
  // A long transcript folds away, unless the user has opened or closed it.
  if (seq > LONG_TRANSCRIPT && !r.txUser) tx.open = false;
}

// render shows a job's state: status, progress, message, result or error.
function render(id) {
  const r = rows.get(id);
  const j = r.job;
  const li = r.el;
  li.dataset.status = j.status;
  li.querySelector(".status").textContent = j.status;
  const pct = Math.round((j.progress || 0) * 100);
  li.querySelector(".fill").style.width = pct + "%";
  li.querySelector(".pct").textContent = pct + "%";
  li.querySelector(".msg").textContent = j.message || (j.status === "waiting" && j.chunks ? `${j.chunks} chunks` : "");
  li.querySelector(".cancel").hidden = terminal.has(j.status);
  li.querySelector(".retry").hidden = j.status !== "failed" && j.status !== "canceled";
  const result = li.querySelector(".result");
  if (j.status === "succeeded" && j.result) {
    const t = j.result;
    const text = typeof t.text === "string"
      ? `${t.duration.toFixed(1)} s of audio${t.language ? " (" + t.language + ")" : ""}: ${t.text}`
      : JSON.stringify(t);
    result.querySelector(".text").textContent = text;
    result.classList.toggle("long", text.length > LONG_RESULT);
    result.hidden = false;
  }
  showError(li.querySelector(".error"), j.rowError || (j.status === "failed" ? j.error || "failed" : ""));
}

// fromJob flattens a job from the REST API into the fields render uses.
function fromJob(job) {
  return { id: job.id, kind: job.kind, created_at: job.created_at, payload: job.payload, status: job.status,
    progress: job.progress.fraction, message: job.progress.message || "", error: job.error || "",
    result: job.result, chunks: chunkCount(job) };
}

function upsert(job, prepend) {
  if (cleared.has(job.id)) return;
  let r = rows.get(job.id);
  if (!r) {
    r = { el: createRow(job), job: fromJob(job), ws: null, outSeq: 0, txUser: false };
    rows.set(job.id, r);
    const list = $("#jobs");
    if (prepend) list.prepend(r.el); else list.append(r.el);
  } else if (!r.ws || terminal.has(job.status)) {
    Object.assign(r.job, fromJob(job)); // while a socket is open, it is fresher
  }
  render(job.id);
  if (!terminal.has(r.job.status)) watch(job.id);
  updateCounts();
}

function updateCounts() {
  const n = { running: 0, pending: 0, waiting: 0 };
  let finished = 0;
  for (const r of rows.values()) {
    if (r.job.status in n) n[r.job.status]++;
    if (terminal.has(r.job.status)) finished++;
  }
  // A chunked recording waits while its chunks run.
  const waiting = n.waiting ? ` · ${n.waiting} in chunks` : "";
  $("#counts").textContent = `${rows.size} shown · ${n.running} running · ${n.pending} pending${waiting}`;
  $("#empty").hidden = rows.size > 0 || cleared.size > 0;
  $("#clear-finished").hidden = finished === 0;
  $("#cleared-note").hidden = cleared.size === 0;
}

// --- clearing finished jobs from view ------------------------------------------

function loadCleared() {
  try {
    return new Set(JSON.parse(localStorage.getItem(CLEARED_KEY) || "[]"));
  } catch (e) {
    return new Set();
  }
}

function saveCleared() {
  try {
    localStorage.setItem(CLEARED_KEY, JSON.stringify([...cleared]));
  } catch (e) {
    /* storage full or disabled: the view forgets at the next reload */
  }
}

// clearFinished removes the finished jobs from the view; the server keeps
// them.
function clearFinished() {
  for (const [id, r] of rows) {
    if (!terminal.has(r.job.status)) continue;
    cleared.add(id);
    r.el.remove();
    rows.delete(id);
  }
  saveCleared();
  updateCounts();
}

function showCleared() {
  cleared = new Set();
  saveCleared();
  refresh();
}

// watch opens the job's WebSocket. A message is {type:"state", id, status,
// progress: {fraction, message}, attempt, error} or {type:"output", seq, data}.
function watch(id) {
  const r = rows.get(id);
  if (r.ws) return;
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/ws/jobs/${id}?after=${r.outSeq}`);
  r.ws = ws;
  ws.onmessage = (ev) => {
    const u = JSON.parse(ev.data);
    if (u.type === "output") {
      addOutput(id, u.seq, u.data);
      return;
    }
    Object.assign(r.job, { status: u.status, progress: u.progress.fraction, message: u.progress.message || "",
      error: u.error || "" });
    render(id);
    updateCounts();
  };
  ws.onclose = () => {
    r.ws = null;
    if (terminal.has(r.job.status)) {
      loadJob(id); // the socket carries no result: fetch it once
    }
    // otherwise the next poll reopens it
  };
}

async function loadJob(id) {
  try {
    upsert(await api("GET", `/api/jobs/${id}`));
  } catch (e) {
    /* shown by the next refresh */
  }
}

async function cancelJob(id, button) {
  button.disabled = true;
  const r = rows.get(id);
  try {
    const job = await api("POST", `/api/jobs/${id}/cancel`);
    r.job.rowError = "";
    upsert(job);
  } catch (e) {
    r.job.rowError = e.message;
    render(id);
  } finally {
    button.disabled = false;
  }
}

// retryJob runs a failed or canceled job again, as the same job: its row
// goes back to pending, its old transcript (cleared by the server) is
// removed, and its socket reopens.
async function retryJob(id, button) {
  button.disabled = true;
  const r = rows.get(id);
  try {
    const job = await api("POST", `/api/jobs/${id}/retry`);
    r.job.rowError = "";
    r.outSeq = 0;
    r.txUser = false;
    r.el.querySelector(".transcript").replaceChildren();
    r.el.querySelector(".tx").hidden = true;
    upsert(job);
    refreshQueues();
  } catch (e) {
    r.job.rowError = e.message;
    render(id);
  } finally {
    button.disabled = false;
  }
}

async function refresh() {
  try {
    const page = await api("GET", "/api/jobs?limit=50");
    showError($("#list-error"), "");
    // Cleared ids that left the list can never come back: forget them.
    const listed = new Set(page.jobs.map((j) => j.id));
    const before = cleared.size;
    for (const id of cleared) if (!listed.has(id)) cleared.delete(id);
    if (cleared.size !== before) saveCleared();
    for (const job of page.jobs.slice().reverse()) upsert(job, true);
    updateCounts();
  } catch (e) {
    if (e.status !== 401) showError($("#list-error"), e.message);
  }
}

// --- start form and sign-in --------------------------------------------------

async function start(ev) {
  ev.preventDefault();
  const button = $("#start");
  button.disabled = true;
  showError($("#form-error"), "");
  const body = { audio_url: $("#audio-url").value.trim(), language: $("#language").value.trim() };
  const user = $("#user").value.trim();
  if (user) body.user = user;
  const headers = {};
  if (window.crypto && crypto.randomUUID) headers["Idempotency-Key"] = crypto.randomUUID();
  try {
    upsert(await api("POST", "/api/transcribe", body, headers), true);
    refreshQueues();
  } catch (e) {
    showError($("#form-error"), e.message);
  } finally {
    button.disabled = false;
  }
}

function showLogin() {
  const d = $("#login");
  if (!d.open) d.showModal();
}

async function login(ev) {
  ev.preventDefault();
  try {
    await api("POST", "/api/login", { token: $("#token").value });
    $("#token").value = "";
    showError($("#login-error"), "");
    $("#login").close();
    refresh();
    refreshQueues();
  } catch (e) {
    showError($("#login-error"), e.status === 401 ? "That token is not right." : e.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#start-form").addEventListener("submit", start);
  $("#login-form").addEventListener("submit", login);
  $("#pause-form").addEventListener("submit", pauseNamed);
  $("#clear-finished").addEventListener("click", clearFinished);
  $("#show-cleared").addEventListener("click", showCleared);
  refresh();
  refreshQueues();
  setInterval(refresh, POLL_MS);
  setInterval(refreshQueues, POLL_MS);
});
