// Built from js/src by js/build.mjs; do not edit.

// src/sweep.js
var ORDER = ["done", "running", "queued", "failed", "cancelled"];
function element(tag, className, parent) {
  const node = document.createElement(tag);
  node.className = className;
  parent.appendChild(node);
  return node;
}
function formatSeconds(seconds) {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.floor(seconds % 60)} s`;
}
function render({ model, el }) {
  const root = element("div", "falnb-sweep", el);
  const head = element("div", "falnb-sweep-head", root);
  const title = element("span", "falnb-sweep-title", head);
  const counts = element("span", "falnb-sweep-counts", head);
  const rate = element("span", "falnb-sweep-rate", head);
  const cancel = element("button", "falnb-sweep-cancel", head);
  cancel.type = "button";
  cancel.textContent = "Cancel all";
  const squares = element("div", "falnb-sweep-squares", root);
  const thumbs = element("div", "falnb-sweep-thumbs", root);
  cancel.addEventListener("click", () => {
    cancel.disabled = true;
    cancel.textContent = "Cancelling\u2026";
    model.send({ type: "cancel" });
  });
  function update() {
    const statuses = model.get("statuses");
    title.textContent = model.get("title");
    const tally = {};
    for (const status of statuses) tally[status] = (tally[status] || 0) + 1;
    counts.textContent = ORDER.filter((s) => tally[s]).map((s) => `${tally[s]} ${s}`).join(" \xB7 ");
    const eta = model.get("eta");
    const parts = [`${model.get("throughput").toFixed(1)} jobs/s`];
    if (eta >= 0) parts.push(`ETA ${formatSeconds(eta)}`);
    parts.push(formatSeconds(model.get("elapsed")));
    if (model.get("throttled")) parts.push(`rate limited ${model.get("throttled")}\xD7`);
    rate.textContent = parts.join(" \xB7 ");
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
      })
    );
  }
  for (const name of ["statuses", "throughput", "eta", "elapsed", "thumbs", "cancellable"]) {
    model.on(`change:${name}`, update);
  }
  model.on("change:title", update);
  update();
}
var sweep_default = { render };
export {
  sweep_default as default
};
