// A sweep's one live view: counts, throughput, ETA, a square per job (its status), the
// newest images as they arrive, and Cancel for every outstanding job. The Python side
// (falnb/widgets/sweep.py) pushes the state a few times a second.

import { cancelButton, element, formatSeconds, viewRoot } from "./_view.js";

const ORDER = ["done", "running", "queued", "failed", "cancelled"];

function render({ model, el }) {
  const root = viewRoot("falnb-sweep", el);
  const head = element("div", "falnb-sweep-head", root);
  const title = element("span", "falnb-sweep-title", head);
  const counts = element("span", "falnb-sweep-counts", head);
  const rate = element("span", "falnb-sweep-rate", head);
  const cancel = cancelButton(model, "falnb-sweep-cancel", head, "Cancel all");
  const squares = element("div", "falnb-sweep-squares", root);
  const thumbs = element("div", "falnb-sweep-thumbs", root);

  function update() {
    const statuses = model.get("statuses");
    title.textContent = model.get("title");
    const tally = {};
    for (const status of statuses) tally[status] = (tally[status] || 0) + 1;
    counts.textContent = ORDER.filter((s) => tally[s])
      .map((s) => `${tally[s]} ${s}`)
      .join(" · ");
    const eta = model.get("eta");
    const parts = [`${model.get("throughput").toFixed(1)} jobs/s`];
    if (eta >= 0) parts.push(`ETA ${formatSeconds(eta)}`);
    parts.push(formatSeconds(model.get("elapsed")));
    if (model.get("throttled")) parts.push(`rate limited ${model.get("throttled")}×`);
    rate.textContent = parts.join(" · ");
    root.dataset.running = String(Boolean(tally.running || tally.queued));
    cancel.hidden = !model.get("cancellable");
    while (squares.children.length < statuses.length) element("span", "", squares);
    while (squares.children.length > statuses.length) squares.lastChild.remove();
    statuses.forEach((status, index) => {
      const square = squares.children[index];
      square.className = `falnb-sweep-square falnb-sweep-${status}`;
      square.title = `job ${index}: ${status}`;
    });
    thumbs.replaceChildren(
      ...model.get("thumbs").map((thumb) => {
        const img = document.createElement("img");
        img.src = thumb.src;
        img.alt = `job ${thumb.index}`;
        img.title = `job ${thumb.index}`;
        return img;
      }),
    );
  }

  for (const name of ["statuses", "throughput", "eta", "elapsed", "thumbs", "cancellable"]) {
    model.on(`change:${name}`, update);
  }
  model.on("change:title", update);
  update();
}

export default { render };
