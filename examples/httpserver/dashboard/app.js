// Dashboard of the jobs transcription example: no framework, no build step.
// The job list is read from GET /api/jobs every few seconds; each job that
// is not finished gets a WebSocket (/ws/jobs/{id}) that pushes its progress
// and its output: for a transcription, one line per segment, so the
// transcript grows under the bar. A socket reopened after a drop asks for
// the lines after the last one shown (?after=), so none is lost or doubled.
// The queues card lists the queues (GET /api/queues) with a pause/resume
// button each, and pauses a queue by name, with or without jobs.
// WebSockets are used rather than EventSource because browsers allow only six
// HTTP/1.1 connections per host, which a few open SSE streams would use up.
"use strict";

const $ = (sel) => document.querySelector(sel);
const terminal = new Set(["succeeded", "failed", "canceled"]);
const rows = new Map(); // job id → {el, job, ws, outSeq}
const POLL_MS = 3000;

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

function setConn(state, text) {
  const el = $("#conn");
  el.dataset.state = state;
  el.textContent = text;
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

function createRow(job) {
  const li = el("li", "job");
  li.dataset.id = job.id;
  const head = el("div", "head");
  head.append(el("span", "status"), el("span", "kind", job.kind));
  if (job.concurrency_key) { // the "user" it was submitted for
    const user = el("span", "user", job.concurrency_key);
    user.title = "user";
    head.append(user);
  }
  head.append(el("span", "jid", job.id.slice(-12)), el("span", "when", new Date(job.created_at).toLocaleTimeString()));
  const cancel = el("button", "cancel", "Cancel");
  cancel.type = "button";
  cancel.addEventListener("click", () => cancelJob(job.id, cancel));
  head.append(cancel);
  const progress = el("div", "progress");
  const bar = el("div", "bar");
  bar.append(el("div", "fill"));
  progress.append(bar, el("span", "pct"), el("span", "msg"));
  const transcript = el("ol", "transcript");
  transcript.hidden = true;
  const result = el("div", "result");
  result.hidden = true;
  const error = el("div", "error");
  error.hidden = true;
  li.append(head, progress, transcript, result, error);
  return li;
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
  list.hidden = false;
  list.scrollTop = list.scrollHeight;
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
  li.querySelector(".msg").textContent = j.message || "";
  li.querySelector(".cancel").hidden = terminal.has(j.status);
  const result = li.querySelector(".result");
  if (j.status === "succeeded" && j.result) {
    const t = j.result;
    result.textContent = typeof t.text === "string"
      ? `${t.duration.toFixed(1)} s of audio${t.language ? " (" + t.language + ")" : ""}: ${t.text}`
      : JSON.stringify(t);
    result.hidden = false;
  }
  showError(li.querySelector(".error"), j.rowError || (j.status === "failed" ? j.error || "failed" : ""));
}

// fromJob flattens a job from the REST API into the fields render uses.
function fromJob(job) {
  return { id: job.id, kind: job.kind, created_at: job.created_at, status: job.status,
    progress: job.progress.fraction, message: job.progress.message || "", error: job.error || "",
    result: job.result };
}

function upsert(job, prepend) {
  let r = rows.get(job.id);
  if (!r) {
    r = { el: createRow(job), job: fromJob(job), ws: null, outSeq: 0 };
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
  const n = { running: 0, pending: 0 };
  for (const r of rows.values()) if (r.job.status in n) n[r.job.status]++;
  $("#counts").textContent = `${rows.size} shown · ${n.running} running · ${n.pending} pending`;
  $("#empty").hidden = rows.size > 0;
}

// watch opens the job's WebSocket. A message is {type:"state", id, status,
// progress, message, error} or {type:"output", seq, data}.
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
    Object.assign(r.job, { status: u.status, progress: u.progress, message: u.message || "", error: u.error || "" });
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

async function refresh() {
  try {
    const page = await api("GET", "/api/jobs?limit=50");
    showError($("#list-error"), "");
    for (const job of page.jobs.slice().reverse()) upsert(job, true);
  } catch (e) {
    if (e.status !== 401) showError($("#list-error"), e.message);
  }
}

// --- queues ------------------------------------------------------------------
// GET /api/queues lists every queue with jobs and every paused queue; a
// paused queue starts no job (in any server process) until it is resumed.

const statuses = ["pending", "running", "succeeded", "failed", "canceled"];

function queueRow(q) {
  const li = el("li", "queue");
  li.dataset.name = q.name;
  li.dataset.paused = String(q.paused);
  const counts = statuses.filter((s) => q.counts[s] > 0).map((s) => `${q.counts[s]} ${s}`);
  li.append(el("span", "qname", q.name), el("span", "badge", "paused"),
    el("span", "qcounts", counts.join(" · ") || "no jobs"));
  const toggle = el("button", "toggle", q.paused ? "Resume" : "Pause");
  toggle.type = "button";
  toggle.addEventListener("click", () => setPaused(q.name, !q.paused, toggle));
  li.append(toggle);
  return li;
}

async function refreshQueues() {
  try {
    const data = await api("GET", "/api/queues");
    $("#queues").replaceChildren(...data.queues.map(queueRow));
    $("#no-queues").hidden = data.queues.length > 0;
  } catch (e) {
    if (e.status !== 401) showError($("#queue-error"), e.message);
  }
}

// setPaused pauses or resumes a queue and reports whether it worked.
async function setPaused(name, paused, button) {
  button.disabled = true;
  let ok = false;
  try {
    await api("POST", `/api/queues/${encodeURIComponent(name)}/${paused ? "pause" : "resume"}`);
    showError($("#queue-error"), "");
    ok = true;
  } catch (e) {
    showError($("#queue-error"), e.message);
  } finally {
    button.disabled = false;
  }
  refreshQueues();
  return ok;
}

async function pauseNamed(ev) {
  ev.preventDefault();
  const input = $("#pause-name");
  const name = input.value.trim();
  if (name && await setPaused(name, true, $("#pause-add"))) input.value = "";
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
  refresh();
  refreshQueues();
  setInterval(refresh, POLL_MS);
  setInterval(refreshQueues, POLL_MS);
});
