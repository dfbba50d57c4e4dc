// What the live views (progress, sweep) share: building their DOM, elapsed times, and the
// Cancel button that asks the Python side to cancel. Bundled into each view by build.mjs.

export function element(tag, className, parent) {
  const node = document.createElement(tag);
  node.className = className;
  parent.appendChild(node);
  return node;
}

// A view's root: `falnb-view` carries the look every view shares (_view.css).
export function viewRoot(className, el) {
  return element("div", `falnb-view ${className}`, el);
}

export function formatSeconds(seconds) {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.floor(seconds % 60)} s`;
}

// A Cancel button: one press sends {type: "cancel"} and the button stays disabled after.
export function cancelButton(model, className, parent, label = "Cancel") {
  const button = element("button", className, parent);
  button.type = "button";
  button.textContent = label;
  button.addEventListener("click", () => {
    button.disabled = true;
    button.textContent = "Cancelling…";
    model.send({ type: "cancel" });
  });
  return button;
}
