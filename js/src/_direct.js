// The browser's own realtime socket (issue 17): frames that never cross the kernel.
//
// The kernel holds the key; it answers a custom message ("session") with a token that opens
// this one app and expires soon, the socket's URL and the fixed inputs (bytes as buffers).
// The token lives only here, in memory: never in a trait, so never in saved widget state.
// Inputs are msgpack-encoded and sent latest-wins (one in flight; the newest waiting input
// goes when the answer arrives). A fresh token is asked for at 90 % of its life and after an
// Unauthorized refusal. With transport "auto" a socket that cannot open (or a page that cannot
// reach the URL) hands the widget back to the kernel path: transport_in_use = "kernel".
import { decode, encode } from "@msgpack/msgpack";

const FPS_WINDOW = 2000;
// The kernel hears the latest frame (for the saved still) once frames rest this long.
const REPORT_AFTER = 250;

const LOOPBACK = (host) =>
  host === "localhost" ||
  host === "127.0.0.1" ||
  host === "[::1]" ||
  host === "::1" ||
  host.endsWith(".localhost");

// A loopback URL names the kernel's machine: the page reaches it only when it runs there too.
export function reachable(url) {
  try {
    return !LOOPBACK(new URL(url).hostname) || LOOPBACK(window.location.hostname);
  } catch {
    return false;
  }
}

function firstImage(result) {
  if (!result || typeof result !== "object") return null;
  const images = result.images;
  if (Array.isArray(images) && images.length && typeof images[0] === "object") return images[0];
  return result.image && typeof result.image === "object" ? result.image : null;
}

function sniff(bytes, declared) {
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return "image/jpeg";
  if (bytes[0] === 0x89 && bytes[1] === 0x50) return "image/png";
  if (bytes[0] === 0x52 && bytes[1] === 0x49 && bytes[8] === 0x57) return "image/webp";
  return declared || "image/png";
}

// The inputs without raw bytes (images): what a caption and the kernel's summary name.
export function displayable(inputs) {
  const shown = {};
  for (const [name, value] of Object.entries(inputs)) {
    if (!(value instanceof Uint8Array) && !(value instanceof DataView)) shown[name] = value;
  }
  return shown;
}

function asBytes(view) {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

export class DirectSocket {
  constructor(model) {
    this.model = model;
    this.mode = model.get("transport");
    this.listeners = new Set();
    this.state = "connecting";
    this.error = "";
    this.fps = 0;
    this.latency = 0;
    this.frames = 0;
    this.frameTimes = [];
    this.url = null;
    this.base = null;
    this.token = null;
    this.expiresAt = 0;
    this.throttle = 0;
    this.ws = null;
    this.opened = false;
    this.everOpened = false;
    this.inFlight = null;
    this.pending = null;
    this.lastSend = -Infinity;
    this.refusals = 0;
    this.unauthorized = false;
    this.socketFrames = 0;
    this.waitingForToken = false;
    this.closed = false;
    this.timers = {};
    this.onCustom = (msg, buffers) => this.onMessage(msg, buffers || []);
    this.onValues = () => this.send();
    model.on("msg:custom", this.onCustom);
    model.on("change:values", this.onValues);
    model.send({ type: "session" });
  }

  get direct() {
    const forced = this.mode === "browser";
    return !this.closed && (forced || this.model.get("transport_in_use") === "browser");
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event) {
    for (const listener of this.listeners) listener(event);
  }

  setState(state, error = "") {
    this.state = state;
    this.error = error;
    this.emit({ type: "state" });
  }

  timer(name, ms, fn) {
    clearTimeout(this.timers[name]);
    this.timers[name] = setTimeout(() => {
      delete this.timers[name];
      fn();
    }, ms);
  }

  onMessage(msg, buffers) {
    if (this.closed || !msg || (msg.type !== "session" && msg.type !== "token")) return;
    if (msg.error) {
      if (msg.type === "session") this.giveUp(msg.error);
      else this.timer("token", 6000, () => this.model.send({ type: "token" }));
      return;
    }
    this.token = msg.token;
    this.expiresAt = Date.now() + msg.expires_in * 1000;
    // As fal's client: refresh at 90 % of the lifetime; the new token serves the next socket.
    this.timer("token", msg.expires_in * 900, () => this.model.send({ type: "token" }));
    if (msg.type === "session") {
      this.url = msg.url;
      this.throttle = msg.throttle_ms || 0;
      this.base = { ...msg.base };
      (msg.binary || []).forEach((name, i) => {
        this.base[name] = asBytes(buffers[i]);
      });
      this.open();
    } else if (this.waitingForToken) {
      this.waitingForToken = false;
      this.open();
    }
  }

  // Stop trying: "auto" hands frames back to the kernel path, "browser" shows why.
  giveUp(reason) {
    if (this.mode === "auto") {
      this.closed = true;
      this.shutSocket();
      this.model.set("transport_in_use", "kernel");
      this.model.save_changes();
      this.emit({ type: "state" });
    } else {
      this.setState("error", reason);
    }
  }

  open() {
    if (this.closed || this.ws || !this.url) return;
    if (this.mode === "auto" && !reachable(this.url)) {
      this.giveUp("this page cannot reach the realtime URL");
      return;
    }
    if (!this.token || Date.now() >= this.expiresAt - 1000) {
      this.waitingForToken = true;
      this.model.send({ type: "token" });
      return;
    }
    let ws;
    try {
      ws = new WebSocket(`${this.url}?fal_jwt_token=${encodeURIComponent(this.token)}`);
    } catch (err) {
      this.giveUp(`cannot open the realtime socket: ${err.message || err}`);
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.opened = false;
    this.unauthorized = false;
    this.socketFrames = 0;
    if (this.state !== "live") this.setState("connecting");
    ws.onopen = () => this.onOpen(ws);
    ws.onmessage = (event) => this.onSocket(event.data);
    ws.onclose = (event) => this.onClose(ws, event.code);
  }

  onOpen(ws) {
    if (ws !== this.ws) return;
    this.opened = true;
    this.everOpened = true;
    if (this.model.get("transport_in_use") !== "browser") {
      this.model.set("transport_in_use", "browser");
      this.model.save_changes();
      this.emit({ type: "state" });
    }
    // The first socket draws a frame for the current values (the kernel may have drawn one).
    if (!this.frames && !this.pending) this.pending = this.inputs();
    this.flush();
  }

  onClose(ws, code) {
    if (ws !== this.ws) return;
    const opened = this.opened;
    const answered = this.socketFrames > 0;
    this.ws = null;
    this.opened = false;
    this.inFlight = null;
    if (this.closed) return;
    if (this.unauthorized) {
      this.refusals += 1;
      if (this.refusals >= 2) {
        this.giveUp("Unauthorized: the realtime token was refused");
        return;
      }
      this.token = null; // ask the kernel for a fresh one, then reconnect
      this.waitingForToken = true;
      this.model.send({ type: "token", refused: true });
      return;
    }
    // A socket that never opened, or dropped before its first answer, failed: "auto" falls
    // back to the kernel path; "browser" says so and tries again on the next input.
    if (!opened || (!answered && code !== 1000)) {
      this.giveUp(`the realtime socket ${opened ? `closed (${code})` : "did not open"}`);
      return;
    }
    if (this.pending) this.open();
  }

  inputs() {
    return { ...this.base, ...this.model.get("values") };
  }

  send() {
    if (!this.direct) return;
    this.pending = this.inputs();
    this.flush();
  }

  flush() {
    if (!this.pending || this.inFlight || this.closed) return;
    if (!this.ws) {
      this.open();
      return;
    }
    if (!this.opened) return; // onOpen flushes
    const wait = this.lastSend + this.throttle - performance.now();
    if (wait > 0) {
      this.timer("throttle", wait, () => this.flush());
      return;
    }
    const inputs = this.pending;
    this.pending = null;
    this.lastSend = performance.now();
    this.inFlight = { inputs, at: this.lastSend };
    this.ws.send(encode(inputs));
  }

  onSocket(data) {
    if (typeof data === "string") {
      let message;
      try {
        message = JSON.parse(data);
      } catch {
        return;
      }
      if (message.type === "x-fal-message") return;
      if (message.type === "x-fal-error") {
        // The server closes the session after this; the next input reconnects.
        this.inFlight = null;
        if (message.error === "TIMEOUT") this.setState("idle");
        else this.setState("error", `${message.error}: ${message.reason || ""}`);
        return;
      }
      if (message.status === "error") {
        if (message.error === "Unauthorized") this.unauthorized = true;
        else this.setState("error", String(message.error));
        return;
      }
      this.onResult(message);
      return;
    }
    let result;
    try {
      result = decode(new Uint8Array(data));
    } catch {
      this.setState("error", "a frame that is not msgpack");
      return;
    }
    this.onResult(result);
  }

  onResult(result) {
    const asked = this.inFlight;
    this.inFlight = null;
    const image = firstImage(result);
    const content = image?.content;
    if (!(content instanceof Uint8Array) && !(image && typeof image.url === "string")) {
      this.setState("error", "the result has no images[0] or image to show");
      this.flush();
      return;
    }
    const now = performance.now();
    this.refusals = 0;
    this.frames += 1;
    this.socketFrames += 1;
    this.latency = asked ? now - asked.at : 0;
    this.frameTimes.push(now);
    while (this.frameTimes.length && now - this.frameTimes[0] > FPS_WINDOW) {
      this.frameTimes.shift();
    }
    const times = this.frameTimes;
    if (times.length >= 2) {
      this.fps = ((times.length - 1) * 1000) / (times[times.length - 1] - times[0]);
    }
    const frame = {
      bytes: content instanceof Uint8Array ? content : null,
      url: content instanceof Uint8Array ? null : image.url,
      type: content instanceof Uint8Array ? sniff(content, image.content_type) : "",
      inputs: asked ? displayable(asked.inputs) : {},
      width: image.width,
      height: image.height,
    };
    this.state = "live";
    this.error = "";
    // The next input goes before this frame is drawn: the server works on it meanwhile.
    this.flush();
    this.emit({ type: "frame", frame });
    if (frame.bytes) this.timer("report", REPORT_AFTER, () => this.report(frame));
  }

  // The kernel keeps the latest frame for the still a saved notebook shows.
  report(frame) {
    if (this.closed) return;
    const content = {
      type: "frame",
      inputs: frame.inputs,
      content_type: frame.type,
      width: Number.isInteger(frame.width) ? frame.width : null,
      height: Number.isInteger(frame.height) ? frame.height : null,
      latency_ms: this.latency,
    };
    this.model.send(content, undefined, [frame.bytes.slice().buffer]);
  }

  shutSocket() {
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000);
  }

  close() {
    this.closed = true;
    for (const name of Object.keys(this.timers)) clearTimeout(this.timers[name]);
    this.model.off("msg:custom", this.onCustom);
    this.model.off("change:values", this.onValues);
    this.shutSocket();
    this.listeners.clear();
  }
}
