// Built from js/src by js/build.mjs; do not edit.

// src/compare.js
function element(tag, className, parent) {
  const node = document.createElement(tag);
  node.className = className;
  parent.appendChild(node);
  return node;
}
function media(item, parent) {
  const node = element(item.kind === "video" ? "video" : "img", "falnb-compare-media", parent);
  node.src = item.src;
  if (item.kind === "video") {
    node.muted = true;
    node.loop = true;
    node.playsInline = true;
  } else {
    node.alt = item.label;
  }
  return node;
}
function swipe(model, root) {
  const [before, after] = model.get("items");
  const stage = element("div", "falnb-compare-stage", root);
  media(after, stage);
  const top = element("div", "falnb-compare-top", stage);
  media(before, top);
  const divider = element("div", "falnb-compare-divider", stage);
  const labels = element("div", "falnb-compare-labels", root);
  element("span", "falnb-compare-label", labels).textContent = before.label;
  element("span", "falnb-compare-label", labels).textContent = after.label;
  const slider = element("input", "falnb-compare-slider", root);
  slider.type = "range";
  slider.min = "0";
  slider.max = "100";
  slider.step = "0.5";
  function show() {
    const position = model.get("position");
    top.style.clipPath = `inset(0 ${100 - position}% 0 0)`;
    divider.style.left = `${position}%`;
    slider.value = String(position);
    root.dataset.position = String(Math.round(position));
  }
  function set(position) {
    model.set("position", Math.max(0, Math.min(100, position)));
    model.save_changes();
  }
  slider.addEventListener("input", () => set(Number(slider.value)));
  let dragging = false;
  stage.addEventListener("pointerdown", (event) => {
    dragging = true;
    stage.setPointerCapture(event.pointerId);
  });
  stage.addEventListener("pointerup", () => {
    dragging = false;
  });
  stage.addEventListener("pointermove", (event) => {
    if (!dragging) return;
    const box = stage.getBoundingClientRect();
    set((event.clientX - box.left) / box.width * 100);
  });
  model.on("change:position", show);
  show();
}
function side(model, root) {
  const row = element("div", "falnb-compare-row", root);
  const players = [];
  for (const item of model.get("items")) {
    const cell = element("figure", "falnb-compare-cell", row);
    const node = media(item, cell);
    if (item.kind === "video") players.push(node);
    element("figcaption", "falnb-compare-label", cell).textContent = item.label;
  }
  if (!players.length) return;
  const controls = element("div", "falnb-compare-controls", root);
  const play = element("button", "falnb-compare-play", controls);
  play.type = "button";
  play.textContent = "Play all";
  const seek = element("input", "falnb-compare-seek", controls);
  seek.type = "range";
  seek.min = "0";
  seek.max = "1";
  seek.step = "0.001";
  seek.value = "0";
  const leader = players[0];
  play.addEventListener("click", () => {
    const playing = !leader.paused;
    for (const player of players) {
      if (playing) player.pause();
      else player.play().catch(() => {
      });
    }
    play.textContent = playing ? "Play all" : "Pause all";
  });
  seek.addEventListener("input", () => {
    for (const player of players) {
      if (player.duration) player.currentTime = Number(seek.value) * player.duration;
    }
  });
  leader.addEventListener("timeupdate", () => {
    if (leader.duration) seek.value = String(leader.currentTime / leader.duration);
    for (const player of players.slice(1)) {
      if (Math.abs(player.currentTime - leader.currentTime) > 0.1) {
        player.currentTime = leader.currentTime;
      }
    }
  });
}
function render({ model, el }) {
  const root = element("div", "falnb-compare", el);
  root.dataset.mode = model.get("mode");
  if (model.get("mode") === "swipe") swipe(model, root);
  else side(model, root);
}
var compare_default = { render };
export {
  compare_default as default
};
