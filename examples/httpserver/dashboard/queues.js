// Queues card of the dashboard (loaded after app.js, whose helpers it
// uses): it lists the queues (GET /api/queues) with a pause/resume button
// each, and pauses a queue by name, with or without jobs.
"use strict";

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

let queuesFailed = false; // the queue error shown is refreshQueues' own

async function refreshQueues() {
  try {
    const data = await api("GET", "/api/queues");
    $("#queues").replaceChildren(...data.queues.map(queueRow));
    $("#no-queues").hidden = data.queues.length > 0;
    if (queuesFailed) showError($("#queue-error"), "");
    queuesFailed = false;
  } catch (e) {
    if (e.status !== 401) {
      showError($("#queue-error"), e.message);
      queuesFailed = true;
    }
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
    queuesFailed = false; // this error stays until the next action
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
