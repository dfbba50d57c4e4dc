// The live picture of a realtime widget: the latest frame (a binary Bytes trait, shown
// through a blob URL), what produced it, and the connection's state, fps and latency.
// Frames are decoded off-screen and swapped in whole, so the picture never flickers.
// The view also tells the kernel when a hand is on the controls (a pointer held down in the
// widget, or a text box in it being edited): the kernel re-emits the cell's output with the
// last frame once things settle, which re-renders this view, so it must not happen mid-drag.

const LABELS = {
  idle: "idle",
  connecting: "connecting…",
  busy: "live",
  live: "live",
  error: "error",
  closed: "closed",
};

function element(tag, className, parent) {
  const node = document.createElement(tag);
  node.className = className;
  parent.appendChild(node);
  return node;
}

// Focus in one of these means typing is under way; a focused slider handle or checkbox does not.
const TEXT_ENTRY =
  'input:not([type="checkbox"]):not([type="radio"]):not([type="range"]):not([type="button"]), textarea, [contenteditable="true"]';

// Reports model "interacting" for this view. Returns gone(): whether the view has left the page
// (then it has stopped listening), and stop(): remove the listeners.
function watchHands(model, el) {
  let pointerDown = false;
  let reported = false;
  let attached = false;
  const widget = () => el.closest(".falnb-realtime") || el;
  const inside = (node) => el.isConnected && node instanceof Node && widget().contains(node);
  // JupyterLab renders a fresh view when the output is re-emitted and drops the old one's DOM
  // without disposing it: a view that was on the page and is gone stops listening.
  const gone = () => {
    if (el.isConnected) attached = true;
    else if (attached) stop();
    return attached && !el.isConnected;
  };
  const sync = () => {
    if (gone()) return;
    const active = document.activeElement;
    const typing = inside(active) && active.matches(TEXT_ENTRY);
    const now = pointerDown || typing;
    if (now === reported) return;
    reported = now;
    model.set("interacting", now);
    model.save_changes();
  };
  const down = (event) => {
    if (gone() || !inside(event.target)) return;
    pointerDown = true;
    sync();
  };
  const up = () => {
    if (!pointerDown) return;
    pointerDown = false;
    sync();
  };
  const listeners = [
    ["pointerdown", down],
    ["pointerup", up],
    ["pointercancel", up],
    ["focusin", sync],
    ["focusout", () => setTimeout(sync)], // activeElement moves after focusout
  ];
  for (const [name, listener] of listeners) document.addEventListener(name, listener, true);
  function stop() {
    for (const [name, listener] of listeners) document.removeEventListener(name, listener, true);
    if (reported) {
      reported = false;
      model.set("interacting", false);
      model.save_changes();
    }
  }
  return { gone, stop };
}

function render({ model, el }) {
  const root = element("div", "falnb-realtime-view", el);
  const picture = element("div", "falnb-realtime-picture", root);
  const img = element("img", "falnb-realtime-frame", picture);
  img.alt = "latest frame";
  img.hidden = true;
  const empty = element("div", "falnb-realtime-empty", picture);
  empty.textContent = "waiting for the first frame…";
  const caption = element("div", "falnb-realtime-caption", root);
  const bar = element("div", "falnb-realtime-bar", root);
  const endpoint = element("span", "falnb-realtime-endpoint", bar);
  const status = element("span", "falnb-realtime-status", bar);
  const fps = element("span", "falnb-realtime-fps", bar);
  const latency = element("span", "falnb-realtime-latency", bar);
  const error = element("div", "falnb-realtime-error", root);

  let shownUrl = null;
  let pending = 0;
  const hands = watchHands(model, el);

  async function showFrame() {
    if (hands.gone()) {
      model.off("change:frame", showFrame); // an orphaned view: nobody sees it any more
      return;
    }
    const data = model.get("frame");
    if (!data || data.byteLength === 0) return;
    const ticket = ++pending;
    const frames = model.get("frames");
    const label = model.get("frame_label");
    const url = URL.createObjectURL(new Blob([data], { type: model.get("frame_type") }));
    const next = new Image();
    next.src = url;
    try {
      await next.decode();
    } catch {
      URL.revokeObjectURL(url);
      return;
    }
    if (ticket !== pending) {
      URL.revokeObjectURL(url); // a newer frame is already on its way
      return;
    }
    img.src = url;
    img.hidden = false;
    empty.hidden = true;
    img.dataset.frames = String(frames);
    caption.textContent = label;
    if (shownUrl) URL.revokeObjectURL(shownUrl);
    shownUrl = url;
  }

  function update() {
    const state = model.get("status");
    root.dataset.status = state;
    endpoint.textContent = model.get("endpoint");
    status.textContent = LABELS[state] || state;
    const rate = model.get("fps");
    fps.textContent = rate > 0 ? `${rate.toFixed(1)} fps` : "";
    const ms = model.get("latency_ms");
    latency.textContent = ms > 0 ? `${Math.round(ms)} ms` : "";
    const message = model.get("error");
    error.textContent = message;
    error.hidden = !message;
  }

  model.on("change:frame", showFrame);
  for (const name of ["status", "fps", "latency_ms", "error", "endpoint"]) {
    model.on(`change:${name}`, update);
  }
  update();
  showFrame();
  return () => {
    hands.stop();
    if (shownUrl) URL.revokeObjectURL(shownUrl);
  };
}

export default { render };
