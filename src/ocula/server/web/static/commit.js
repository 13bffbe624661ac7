// An uncommitted run's page: "Commit now" matches the run's predictions to the current
// labels (bbox, IoU 0.5, the API's defaults) as a server job, follows the job, and
// shows the run's metrics once it is done, or why it failed.
import { api } from "./api.js";

const root = document.getElementById("run-page");
const button = document.getElementById("commit-run");
const status = document.getElementById("commit-status");
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

async function commit() {
  button.disabled = true;
  status.className = "muted";
  status.textContent = "Committing…";
  try {
    let job = await api(`/runs/${encodeURIComponent(root.dataset.runId)}/commit`,
                        { method: "POST", body: {} });
    while (job.status !== "Completed" && !job.status.startsWith("Errored")) {
      await sleep(400);
      job = await api(`/jobs/${encodeURIComponent(job.job_id)}`);
      status.textContent = `Committing… ${Math.round(100 * (job.job_progress || 0))}%`;
    }
    if (job.status !== "Completed") {
      const why = (job.errors || []).map((e) => (e && e.detail) || String(e)).join("; ");
      throw new Error(why || job.message || job.status);
    }
    location.reload();
  } catch (err) {
    status.className = "error";
    status.textContent = err.message;
    button.disabled = false;
  }
}

button.addEventListener("click", commit);
