// The live picture of a realtime widget: the latest frame, what produced it, the connection's
// state, fps and latency, and which transport carries the frames. Frames come either from the
// kernel (the binary "frame" trait) or, browser-direct, from the widget's own socket
// (_direct.js); either way they are decoded off the main thread (see decoded()) and drawn
// whole onto one canvas, so the picture never flickers. A canvas rather than an <img>: a new
// src makes Chromium decode the picture again when it rasterises the page's tiles, and
// re-lay out the page around it; a drawn bitmap is decoded once and changes only pixels.
// Controls listed in "controls_spec" are drawn here: browser-direct their moves go straight
// to the socket, and the kernel hears where they rest.
// The view also tells the kernel when a hand is on the controls (a pointer held down in the
// widget, or a text box in it being edited): the kernel re-emits the cell's output with the
// last frame once things settle, which re-renders this view, so it must not happen mid-drag.
import { DirectSocket } from "./_direct.js";

// Browser-direct, the kernel hears a drawn control's value once it rests this long.
const VALUES_AFTER = 300;
// The fps and latency readouts are rewritten at most this often (ms).
const STATS_EVERY = 200;

const LABELS = {
  idle: "idle",
  connecting: "connecting…",
  busy: "live",
  live: "live",
  error: "error",
  closed: "closed",
};

// Sets target[key] only when it differs: writing the same text still dirties layout.
function put(target, key, value) {
  if (target[key] !== value) target[key] = value;
}

// An element's text, changed in place: setting textContent replaces the text node, and every
// node inserted into an output area makes Chromium recheck the page's :has() rules and
// re-style the output (on each frame and key press); a text node's data changes alone.
function setText(node, value) {
  const only = node.firstChild;
  if (only && only.nodeType === Node.TEXT_NODE && !only.nextSibling) {
    if (only.data !== value) only.data = value;
  } else if (node.textContent !== value) {
    node.textContent = value;
  }
}

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

// As Python's repr, so a caption reads the same whichever side drew the frame.
function pyRepr(value, integer) {
  let text;
  if (typeof value === "string") text = `'${value}'`;
  else if (typeof value === "boolean") text = value ? "True" : "False";
  else if (value === null || value === undefined) text = "None";
  else if (typeof value === "number") {
    text = Number.isInteger(value) && !integer ? value.toFixed(1) : String(value);
  } else text = JSON.stringify(value);
  return text.length <= 40 ? text : `${text.slice(0, 37)}...`;
}

const KEY_STEPS = {
  ArrowRight: 1,
  ArrowUp: 1,
  ArrowLeft: -1,
  ArrowDown: -1,
  PageUp: 10,
  PageDown: -10,
};

// A slider value on its step's grid, with the step's decimals (0.1 + 0.2 reads 0.3).
function onGrid(raw, spec) {
  const step = spec.step || 1;
  const value = spec.min + Math.round((raw - spec.min) / step) * step;
  if (spec.integer) return Math.round(value);
  const decimals = (String(step).split(".")[1] || "").length;
  return Number(Math.min(Math.max(value, spec.min), spec.max).toFixed(decimals));
}

// The controls of "controls_spec", each writing model "values"; returns sync(values).
function drawControls(model, parent, onMove) {
  const specs = model.get("controls_spec") || [];
  const box = element("div", "falnb-realtime-drawn", parent);
  box.hidden = specs.length === 0;
  // Keys pressed in a control are the control's (arrows move a slider), not JupyterLab's.
  box.dataset.lmSuppressShortcuts = "true";
  const syncers = [];
  const move = (name, value) => {
    model.set("values", { ...model.get("values"), [name]: value });
    onMove();
  };
  for (const spec of specs) {
    const row = element("label", `falnb-realtime-control falnb-realtime-${spec.kind}`, box);
    row.dataset.name = spec.name;
    element("span", "falnb-realtime-name", row).textContent = spec.label;
    let input;
    if (spec.kind === "slider") {
      input = element("input", "falnb-realtime-input", row);
      input.type = "range";
      input.min = String(spec.min);
      input.max = String(spec.max);
      input.step = String(spec.step);
      const readout = element("span", "falnb-realtime-readout", row);
      const show = (value) => {
        setText(readout, pyRepr(value, spec.integer));
      };
      input.addEventListener("input", () => {
        const value = onGrid(Number(input.value), spec);
        show(value);
        move(spec.name, value);
      });
      // Arrow keys step the slider here: JupyterLab keeps their default action for itself
      // (as ipywidgets' own slider, this one handles its keys). They stop here too: the
      // notebook's own key handlers (caret tracking, its toolbar's re-render) cost the page
      // a few milliseconds a press for keys that are not theirs.
      input.addEventListener("keydown", (event) => {
        const steps = KEY_STEPS[event.key];
        if (!steps) return;
        event.preventDefault();
        event.stopPropagation();
        input.value = String(onGrid(Number(input.value) + steps * spec.step, spec));
        input.dispatchEvent(new Event("input"));
      });
      syncers.push((values) => {
        if (!(spec.name in values)) return;
        if (Number(input.value) !== values[spec.name]) input.value = String(values[spec.name]);
        show(values[spec.name]);
      });
    } else if (spec.kind === "checkbox") {
      input = element("input", "falnb-realtime-input", row);
      input.type = "checkbox";
      input.addEventListener("change", () => move(spec.name, input.checked));
      syncers.push((values) => {
        if (spec.name in values) input.checked = Boolean(values[spec.name]);
      });
    } else if (spec.kind === "dropdown") {
      input = element("select", "falnb-realtime-input", row);
      spec.options.forEach(([label], i) => {
        const option = element("option", "", input);
        option.value = String(i);
        option.textContent = label;
      });
      input.addEventListener("change", () => move(spec.name, spec.options[input.value][1]));
      syncers.push((values) => {
        const i = spec.options.findIndex(([, v]) => v === values[spec.name]);
        if (i >= 0) input.value = String(i);
      });
    } else {
      input = element("input", "falnb-realtime-input", row);
      input.type = "text";
      input.addEventListener("input", () => move(spec.name, input.value));
      syncers.push((values) => {
        if (spec.name in values && input.value !== values[spec.name]) {
          input.value = String(values[spec.name]);
        }
      });
    }
  }
  const integers = new Set(specs.filter((s) => s.integer).map((s) => s.name));
  return {
    sync: (values) => {
      for (const sync of syncers) sync(values);
    },
    label: (inputs) =>
      Object.keys(model.get("values"))
        .filter((name) => name in inputs)
        .map((name) => `${name}=${pyRepr(inputs[name], integers.has(name))}`)
        .join(", "),
  };
}

const TRANSPORT_LABELS = { browser: "browser-direct", kernel: "via kernel", "": "via kernel" };

function render({ model, el }, socket) {
  const root = element("div", "falnb-realtime-view", el);
  const picture = element("div", "falnb-realtime-picture", root);
  const canvas = element("canvas", "falnb-realtime-frame", picture);
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", "latest frame");
  canvas.hidden = true;
  let context = null;
  const empty = element("div", "falnb-realtime-empty", picture);
  empty.textContent = "waiting for the first frame…";
  const caption = element("div", "falnb-realtime-caption", root);
  const bar = element("div", "falnb-realtime-bar", root);
  const endpoint = element("span", "falnb-realtime-endpoint", bar);
  const status = element("span", "falnb-realtime-status", bar);
  const fps = element("span", "falnb-realtime-fps", bar);
  const latency = element("span", "falnb-realtime-latency", bar);
  const transport = element("span", "falnb-realtime-transport", bar);
  const error = element("div", "falnb-realtime-error", root);

  // Frames in the order they came, and the newest drawn: a frame that finishes decoding
  // after a newer one is dropped, any other is drawn (a newer one still decoding will
  // follow it; dropping it would leave the screen on an older frame meanwhile).
  let arrived = 0;
  let drawn = 0;
  let disposed = false;
  const hands = watchHands(model, el);

  // Browser-direct the socket has the move already; the kernel hears where the control rests.
  let valuesTimer = null;
  const onMove = () => {
    clearTimeout(valuesTimer);
    if (socket?.direct) valuesTimer = setTimeout(() => model.save_changes(), VALUES_AFTER);
    else model.save_changes();
  };
  const controls = drawControls(model, root, onMove);
  controls.sync(model.get("values"));

  // A frame as something to draw. Bytes go to WebCodecs' ImageDecoder where the page has one
  // (Chromium, in a secure context such as loopback), which decodes off the main thread: a
  // Blob, the other way in, is registered with the browser process and read back from it, a
  // round trip through another busy process for every frame (without it the browser
  // benchmark's answer-to-frame time fell from 20 to 9 ms). ImageDecoder hands a JPEG over as
  // YUV, converted when drawn, so its colours are upsampled as a GPU does it rather than as
  // libjpeg does: less than one level apart on average, more at a sharp colour edge.
  // Elsewhere bytes decode as a Blob's bitmap. A URL loads as an image (drawing one from
  // another origin is allowed, it only stops the page reading the pixels back).
  async function decoded(source) {
    if (typeof source === "string") {
      const image = new Image();
      image.src = source;
      await image.decode();
      return image;
    }
    if (typeof ImageDecoder === "function") {
      let decoder;
      try {
        decoder = new ImageDecoder({ data: source.bytes, type: source.type });
        return (await decoder.decode()).image;
      } catch {
        // a type or an encoding it does not take: as a Blob below
      } finally {
        decoder?.close();
      }
    }
    return createImageBitmap(new Blob([source.bytes], { type: source.type }));
  }

  // source: the frame's bytes and type ({ bytes, type }), or its URL.
  async function show(source, frames, label) {
    const ticket = ++arrived;
    let bitmap;
    try {
      bitmap = await decoded(source);
    } catch {
      return;
    }
    if (disposed || ticket < drawn) {
      bitmap.close?.(); // a newer frame is already drawn
      return;
    }
    drawn = ticket;
    // A decoded frame (ImageDecoder), an image (a URL) or a bitmap (a Blob).
    const width = bitmap.displayWidth || bitmap.naturalWidth || bitmap.width;
    const height = bitmap.displayHeight || bitmap.naturalHeight || bitmap.height;
    // Setting a canvas's size clears it and re-lays it out: only when the size changes.
    if (canvas.width !== width) canvas.width = width;
    if (canvas.height !== height) canvas.height = height;
    context ??= canvas.getContext("2d", { alpha: false });
    context.drawImage(bitmap, 0, 0);
    bitmap.close?.();
    // What the canvas shows, for whoever must prove it is the frame that was sent (tests).
    canvas.falnbShown = source;
    put(canvas, "hidden", false);
    put(empty, "hidden", true);
    canvas.dataset.frames = String(frames);
    setText(caption, label);
  }

  function showFrame() {
    if (hands.gone()) {
      model.off("change:frame", showFrame); // an orphaned view: nobody sees it any more
      return;
    }
    const data = model.get("frame");
    if (!data || data.byteLength === 0) return;
    const bytes = ArrayBuffer.isView(data)
      ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      : new Uint8Array(data);
    show({ bytes, type: model.get("frame_type") }, model.get("frames"), model.get("frame_label"));
  }

  function showDirect(frame) {
    if (hands.gone()) return;
    const label = controls.label(frame.inputs);
    const source = frame.bytes ? { bytes: frame.bytes, type: frame.type } : frame.url;
    show(source, socket.frames, label);
  }

  // fps and latency change with every frame: as tqdm does, they are written a few times a
  // second (and once more after the last frame), not at a rate nobody can read.
  let statsAt = Number.NEGATIVE_INFINITY;
  let statsTimer = null;
  function writeStats() {
    clearTimeout(statsTimer);
    statsTimer = null;
    statsAt = performance.now();
    const direct = socket?.direct;
    const rate = direct ? socket.fps : model.get("fps");
    setText(fps, rate > 0 ? `${rate.toFixed(1)} fps` : "");
    const ms = direct ? socket.latency : model.get("latency_ms");
    setText(latency, ms > 0 ? `${Math.round(ms)} ms` : "");
  }

  // Runs on every frame: only what changed is written, so the page re-lays out no more of
  // the widget than the numbers that moved.
  function update() {
    const direct = socket?.direct;
    const state = direct ? socket.state : model.get("status");
    put(root.dataset, "status", state);
    put(root.dataset, "transport", model.get("transport_in_use") || "undecided");
    setText(endpoint, model.get("endpoint"));
    setText(status, LABELS[state] || state);
    const wait = statsAt + STATS_EVERY - performance.now();
    if (wait <= 0) writeStats();
    else statsTimer ??= setTimeout(writeStats, wait);
    setText(transport, TRANSPORT_LABELS[model.get("transport_in_use")] || "");
    const message = direct || socket?.error ? socket.error : model.get("error");
    setText(error, message);
    put(error, "hidden", !message);
  }

  const unsubscribe = socket
    ? socket.subscribe((event) => {
        if (event.type === "frame") showDirect(event.frame);
        update();
      })
    : () => {};
  const onValues = () => controls.sync(model.get("values"));
  model.on("change:frame", showFrame);
  model.on("change:values", onValues);
  for (const name of ["status", "fps", "latency_ms", "error", "endpoint", "transport_in_use"]) {
    model.on(`change:${name}`, update);
  }
  update();
  showFrame();
  return () => {
    unsubscribe();
    clearTimeout(valuesTimer);
    clearTimeout(statsTimer);
    hands.stop();
    disposed = true; // a frame still decoding is not drawn
  };
}

// A factory: anywidget calls it once per model, so the model's one socket is shared by its
// views (the model objects the hooks get are per-view proxies, no key to share it by).
export default () => {
  let socket = null;
  return {
    initialize({ model }) {
      if (model.get("transport") === "kernel") return undefined;
      socket = new DirectSocket(model);
      return () => socket.close();
    },
    render: (props) => render(props, socket),
  };
};
