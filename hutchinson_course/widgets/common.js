// Shared by every course widget. hutchinson_course/widgets/assets.py puts this file first in each
// widget's ES module, so these names are in scope in the widget's own code below it.

// One colour per axis letter, the same in every widget (Okabe-Ito colours, distinct for colour-blind
// readers and visible on light and dark pages). Axes of a fixed size (t's trailing 1, a legacy key's
// 2 uint32) have no letter and are drawn in the text colour.
export const AXIS_COLOURS = { B: "#0072b2", N: "#e69f00", D: "#009e73", Dc: "#cc79a7", K: "#56b4e9" };
export const AXIS_MEANINGS = {
  B: "batch elements",
  N: "points per batch element",
  D: "dimension of a point",
  Dc: "dimension of a context vector",
  K: "context vectors per batch element (structured context)",
};

export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "style" && typeof value === "object") Object.assign(node.style, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.flat(Infinity).filter((child) => child !== undefined && child !== null));
  return node;
}

export function svgElement(tag, attributes = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  node.append(...children.flat(Infinity));
  return node;
}

// Bytes in binary units, as the course prints them: 48 B, 1.5 KiB, 3.0 MiB.
export function formatBytes(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

export function shapeText(sizes) {
  return sizes.length === 1 ? `(${sizes[0]},)` : `(${sizes.join(", ")})`;
}

// The colour of an axis named by a letter, or by letters joined with "·" (flattened axes: a gradient).
export function axisBackground(name) {
  const colours = name.split("·").map((letter) => AXIS_COLOURS[letter]);
  if (colours.some((colour) => !colour)) return null;
  const tinted = colours.map((colour) => `color-mix(in srgb, ${colour} 35%, transparent)`);
  return tinted.length === 1 ? tinted[0] : `linear-gradient(90deg, ${tinted.join(", ")})`;
}

export function axisChip(name, size, scaled = true) {
  const background = axisBackground(name);
  const first = AXIS_COLOURS[name.split("·")[0]];
  // Width grows with log2(size): 1 -> 1.4em, 64 -> 4.4em; the exact sizes are in the text beside it.
  const width = scaled ? `${1.4 + 0.5 * Math.log2(Math.max(size, 1))}em` : undefined;
  return element(
    "span",
    {
      class: background ? "hc-axis" : "hc-axis hc-axis-fixed",
      "data-axis": name,
      title: `${name} = ${size}`,
      style: { width, background: background ?? undefined, borderColor: first ?? undefined },
    },
    name,
  );
}

// Controls are labelled with <label for=...>, so that clicking the text focuses them and screen
// readers announce that text (and only it) as their name. Ids are unique on the page: several
// widgets, each with its own copy of this module, may share it.
const ID_PREFIX = `hc-${Math.random().toString(36).slice(2, 10)}`;
let lastId = 0;

function labelled(label, input, ...extra) {
  lastId += 1;
  input.id = `${ID_PREFIX}-${lastId}`;
  return element("span", { class: "hc-control" }, element("label", { for: input.id }, label), input, ...extra);
}

// A slider; the <output> beside it shows the value. Arrow keys move it.
export function rangeControl({ label, min, max, value, onInput, describe = String }) {
  const input = element("input", { type: "range", min, max, step: 1, value });
  const shown = element("output", {}, describe(value));
  input.addEventListener("input", () => onInput(Number(input.value)));
  return {
    control: labelled(label, input, shown),
    input,
    update(newValue, enabled = true) {
      input.value = String(newValue);
      input.disabled = !enabled;
      input.setAttribute("aria-valuetext", describe(newValue));
      shown.textContent = describe(newValue);
    },
  };
}

export function selectControl({ label, options, value, onChange }) {
  const select = element(
    "select",
    {},
    options.map(([optionValue, text]) => element("option", { value: optionValue }, text)),
  );
  select.value = value;
  select.addEventListener("change", () => onChange(select.value));
  return {
    control: labelled(label, select),
    input: select,
    update(newValue) {
      select.value = newValue;
    },
  };
}

// Set traits from the browser: the change events redraw this view, and a live kernel gets them too.
// Without a kernel (the static website) the widget keeps working on its own.
export function setTraits(model, values) {
  for (const [name, value] of Object.entries(values)) model.set(name, value);
  model.save_changes();
}

// Redraw on any of these traits' change events; returns the cleanup anywidget calls on removal.
export function redrawOn(model, names, draw) {
  for (const name of names) model.on(`change:${name}`, draw);
  return () => names.forEach((name) => model.off(`change:${name}`, draw));
}
