// The memory explorer's view (after common.js and shapes.js). Logical bytes come from the shape rules
// here in the browser; compiled figures come from the kernel, through the `compiled` trait.

const STRATEGY_NAMES = { tile: "tile", in_axes_none: "in_axes=None", flatten: "flatten" };
const COMPILED_FIELDS = [
  ["arguments", "arguments"],
  ["temporaries", "temporaries"],
  ["output", "output"],
];

function settingsKey(B, N, Dc) {
  return `${B},${N},${Dc}`;
}

function numberCell(bytes, attributes = {}) {
  return element("td", { class: "hc-number", ...attributes }, formatBytes(bytes));
}

function memoryTable(settings, compiled) {
  const header = element(
    "tr",
    {},
    element("th", { scope: "col" }, "strategy"),
    element("th", { scope: "col" }, "logical", element("small", {}, "arrays handed to vmap")),
    COMPILED_FIELDS.map(([, title]) =>
      element("th", { scope: "col" }, `compiled ${title}`, element("small", {}, "memory_analysis()")),
    ),
  );
  const rows = STRATEGIES.map((strategy) => {
    const logical = logicalBytes({ ...settings, strategy });
    const figures = compiled && compiled[strategy];
    return element(
      "tr",
      { "data-strategy": strategy },
      element("th", { scope: "row" }, STRATEGY_NAMES[strategy]),
      numberCell(logical, { "data-field": "logical", "data-bytes": logical }),
      COMPILED_FIELDS.map(([field]) =>
        figures
          ? numberCell(figures[field], { "data-field": field, "data-bytes": figures[field] })
          : element("td", { class: "hc-number hc-pending", "data-field": field }, "…"),
      ),
    );
  });
  return element(
    "div",
    { class: "hc-scroll" },
    element(
      "table",
      { class: "hc-table hc-memory" },
      element(
        "caption",
        {},
        `B = ${settings.B}, N = ${settings.N}, D = ${settings.D}, Dc = ${settings.Dc} (global context), ` +
          `${settings.num_probes} probes`,
      ),
      element("thead", {}, header),
      element("tbody", {}, rows),
    ),
  );
}

function status(model, key) {
  const compiled = model.get("compiled");
  if (key in compiled) {
    if (STRATEGIES.some((strategy) => compiled[key][strategy] === null)) {
      return `The ${model.get("backend")} backend reports no memory analysis.`;
    }
    return `Compiled on the ${model.get("backend")} backend for these settings.`;
  }
  const known = Object.keys(compiled)
    .map((settings) => settings.split(",").map(Number))
    .map(([B, N, Dc]) => `B = ${B}, N = ${N}, Dc = ${Dc}`);
  return (
    "Compiled figures for these settings come from a running kernel (compiling takes a few " +
    `seconds). Without one, as on the website, only these settings have them: ${known.join("; ")}.`
  );
}

function render({ model, el }) {
  const choices = model.get("choices");
  const sliders = Object.fromEntries(
    ["B", "N", "Dc"].map((name) => [
      name,
      rangeControl({
        label: name,
        min: 0,
        max: choices[name].length - 1,
        value: choices[name].indexOf(model.get(name)),
        describe: (index) => String(choices[name][index]),
        onInput: (index) => setTraits(model, { [name]: choices[name][index] }),
      }),
    ]),
  );
  const picture = element("div");
  const note = element("p", { class: "hc-note", role: "status" });
  el.append(
    element(
      "div",
      { class: "hc-widget hc-memory-explorer" },
      element(
        "fieldset",
        { class: "hc-controls" },
        element("legend", {}, "Memory explorer"),
        Object.values(sliders).map((slider) => slider.control),
      ),
      picture,
      note,
      element(
        "p",
        { class: "hc-legend" },
        "Logical: the bytes of the arrays each strategy builds and hands to vmap (x, z, t, mask " +
          "and keys at its “before the vmap” level, as in the shape explorer). Compiled: what " +
          "jax.jit(per_point.batch_traces).lower(...).compile().memory_analysis() " +
          "reports. x_t is missing from the compiled arguments: this field's Jacobian does not " +
          "depend on x, and jit drops inputs the program does not use.",
      ),
    ),
  );

  function draw() {
    const settings = {
      B: model.get("B"),
      N: model.get("N"),
      D: model.get("D"),
      Dc: model.get("Dc"),
      K: null,
      num_probes: model.get("num_probes"),
      context_kind: "global",
      key_kind: "typed",
    };
    for (const [name, slider] of Object.entries(sliders)) {
      slider.update(choices[name].indexOf(settings[name]));
    }
    const key = settingsKey(settings.B, settings.N, settings.Dc);
    picture.replaceChildren(memoryTable(settings, model.get("compiled")[key]));
    note.textContent = status(model, key);
  }
  draw();
  return redrawOn(model, ["B", "N", "Dc", "compiled"], draw);
}

export default { render };
