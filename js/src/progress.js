// Live progress of one fal request: status, queue position, elapsed time, a bar when logs
// reveal "step i/N", the latest log lines, and Cancel. All state lives in the model; the
// Python side updates it from falnb's loop thread.

import { cancelButton, element, formatSeconds, viewRoot } from "./_view.js";

const LABELS = {
  SUBMITTING: "submitting",
  IN_QUEUE: "in queue",
  IN_PROGRESS: "running",
  RECONNECTING: "reconnecting",
  COMPLETED: "done",
  CANCELLED: "cancelled",
  ERROR: "failed",
};
const FINAL = new Set(["COMPLETED", "CANCELLED", "ERROR"]);

function render({ model, el }) {
  const root = viewRoot("falnb-progress", el);
  const head = element("div", "falnb-progress-head", root);
  const endpoint = element("span", "falnb-progress-endpoint", head);
  const status = element("span", "falnb-progress-status", head);
  const detail = element("span", "falnb-progress-detail", head);
  const elapsed = element("span", "falnb-progress-elapsed", head);
  const cancel = cancelButton(model, "falnb-progress-cancel", head);
  const track = element("div", "falnb-progress-track", root);
  const bar = element("div", "falnb-progress-bar", track);
  const logs = element("pre", "falnb-progress-logs", root);

  function tick() {
    const started = model.get("started_at");
    const ended = model.get("ended_at");
    if (!started) {
      elapsed.textContent = "";
      return;
    }
    const until = ended || Date.now();
    elapsed.textContent = formatSeconds(Math.max(0, (until - started) / 1000));
  }

  function update() {
    const state = model.get("status");
    root.dataset.status = state;
    endpoint.textContent = model.get("endpoint");
    status.textContent = LABELS[state] || state.toLowerCase();
    const position = model.get("queue_position");
    const label = model.get("progress_label");
    const error = model.get("error");
    if (error) detail.textContent = error;
    else if (state === "IN_QUEUE" && position >= 0)
      detail.textContent = `queue position ${position}`;
    else detail.textContent = label;
    const progress = model.get("progress");
    track.classList.toggle("falnb-indeterminate", progress < 0 && !FINAL.has(state));
    bar.style.width =
      progress >= 0 ? `${Math.round(progress * 100)}%` : FINAL.has(state) ? "100%" : "";
    logs.textContent = model.get("logs").join("\n");
    logs.hidden = model.get("logs").length === 0;
    const finished = FINAL.has(state);
    cancel.hidden = finished || !model.get("cancellable");
    if (finished) cancel.disabled = true;
    tick();
  }

  const timer = setInterval(tick, 100);
  const names = ["status", "queue_position", "progress", "progress_label", "logs", "error"];
  for (const name of [...names, "endpoint", "started_at", "ended_at", "cancellable"]) {
    model.on(`change:${name}`, update);
  }
  update();
  return () => clearInterval(timer);
}

export default { render };
