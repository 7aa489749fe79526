// The shape explorer's view (after common.js and shapes.js): controls for the settings, and a table
// with one column per level of the strategy and one row per argument.

const LEVEL_NOTES = {
  inputs: () => "what the caller passes",
  "before the outer vmap": ({ strategy }) =>
    strategy === "tile" ? "z and t copied to every point" : "t squeezed to (B,); z as it is",
  "before the vmap": () => "B and N flattened into B·N rows; z and t repeated",
  "inside the outer vmap": ({ B }) => `one batch element, per call (${B} calls)`,
  "inside the inner vmap": ({ B, N }) => `one point, per call (${B * N} calls)`,
  "inside the vmap": ({ B, N }) => `one point, per call (${B * N} calls)`,
  "output of the vmap": () => "one trace per flattened row",
  output: ({ strategy }) => (strategy === "flatten" ? "reshaped to (B, N)" : "stacked back up"),
};

const STRATEGY_NOTES = {
  tile:
    "Tile: z and t are repeated N times (jnp.repeat) so that every argument has the axes (B, N); " +
    "both vmaps map every argument over axis 0.",
  in_axes_none:
    "in_axes=None: the outer vmap maps z and t over B; the inner vmap passes them unchanged to the " +
    "N points. Nothing is copied.",
  flatten:
    "Flatten: B and N become one axis of B·N rows (z and t repeated N times), one vmap maps it, and " +
    "the traces are reshaped to (B, N).",
};

const TRAITS = ["B", "N", "D", "Dc", "K", "context_kind", "strategy", "key_kind"];

function settingsOf(model) {
  return Object.fromEntries(TRAITS.map((name) => [name, model.get(name)]));
}

function arrayCell(level, argument, axes, key_kind) {
  const sizes = axes.map(([, size]) => size);
  const bytes = arrayBytes(argument, axes, key_kind);
  const boxes = axes.length
    ? axes.map(([name, size]) => axisChip(name, size))
    : [element("span", { class: "hc-axis hc-axis-scalar", title: "a scalar: no axes" }, "scalar")];
  return element(
    "td",
    {
      "data-level": level,
      "data-argument": argument,
      "data-shape": sizes.join(","),
      "data-axes": axes.map(([name]) => name).join(","),
      "data-bytes": bytes,
    },
    element("span", { class: "hc-boxes" }, boxes),
    element("code", {}, shapeText(sizes)),
    element("span", { class: "hc-bytes" }, formatBytes(bytes)),
  );
}

function levelsTable(settings) {
  const levels = strategyShapes(settings);
  const rows = [...ARGUMENTS, "traces"];
  const header = element(
    "tr",
    {},
    element("th", { scope: "col" }, "argument"),
    levels.map(({ level }) =>
      element(
        "th",
        { scope: "col" },
        level,
        element("small", {}, LEVEL_NOTES[level](settings)),
      ),
    ),
  );
  const body = rows.map((argument) =>
    element(
      "tr",
      {},
      element("th", { scope: "row" }, argument),
      levels.map(({ level, shapes }) =>
        argument in shapes
          ? arrayCell(level, argument, shapes[argument], settings.key_kind)
          : element("td", { class: "hc-empty" }, "·"),
      ),
    ),
  );
  const totals = element(
    "tr",
    { class: "hc-total" },
    element("th", { scope: "row" }, "all"),
    levels.map(({ level, shapes }) => {
      const bytes = Object.entries(shapes).reduce(
        (sum, [argument, axes]) => sum + arrayBytes(argument, axes, settings.key_kind),
        0,
      );
      return element("td", { "data-level": level, "data-bytes": bytes }, formatBytes(bytes));
    }),
  );
  return element(
    "div",
    { class: "hc-scroll", tabindex: 0, role: "region", "aria-label": "shapes at each level" },
    element(
      "table",
      { class: "hc-table hc-levels" },
      element("caption", {}, `Shapes and bytes at each level (strategy ${settings.strategy})`),
      element("thead", {}, header),
      element("tbody", {}, body, totals),
    ),
  );
}

function legend(settings) {
  const letters = ["B", "N", "D", "Dc", ...(settings.context_kind === "structured" ? ["K"] : [])];
  return element(
    "div",
    { class: "hc-legend" },
    letters.map((letter) =>
      element(
        "span",
        {},
        axisChip(letter, settings[letter], false),
        ` ${settings[letter]} ${AXIS_MEANINGS[letter]}`,
      ),
    ),
    element(
      "p",
      {},
      "Box widths grow with log2 of each axis's size. Bytes: float32 (4 B) for x, z, t and the " +
        "traces; a bool mask (1 B); 8 B per key (a typed key stores two uint32 words; a legacy " +
        "key is those two uint32 as a trailing axis of 2). Inside a vmap, each cell is what one " +
        "call of the mapped function receives.",
    ),
  );
}

function render({ model, el }) {
  const limits = model.get("limits");
  const set = (name) => (value) => setTraits(model, { [name]: value });
  const ranges = Object.fromEntries(
    ["B", "N", "D", "Dc", "K"].map((name) => [
      name,
      rangeControl({
        label: name,
        min: limits[name][0],
        max: limits[name][1],
        value: model.get(name),
        onInput: set(name),
      }),
    ]),
  );
  const selects = {
    context_kind: selectControl({
      label: "context",
      options: [
        ["global", "global z: (B, Dc)"],
        ["structured", "structured z: (B, K, Dc)"],
      ],
      value: model.get("context_kind"),
      onChange: set("context_kind"),
    }),
    strategy: selectControl({
      label: "strategy",
      options: [
        ["tile", "tile"],
        ["in_axes_none", "in_axes=None"],
        ["flatten", "flatten"],
      ],
      value: model.get("strategy"),
      onChange: set("strategy"),
    }),
    key_kind: selectControl({
      label: "keys",
      options: [
        ["typed", "typed: jax.random.key"],
        ["legacy", "legacy: jax.random.PRNGKey"],
      ],
      value: model.get("key_kind"),
      onChange: set("key_kind"),
    }),
  };
  const note = element("p", { class: "hc-note" });
  const picture = element("div");
  const root = element(
    "div",
    { class: "hc-widget hc-shape-explorer" },
    element(
      "fieldset",
      { class: "hc-controls" },
      element("legend", {}, "Shape explorer"),
      Object.values(ranges).map((r) => r.control),
      Object.values(selects).map((s) => s.control),
    ),
    note,
    picture,
  );
  el.append(root);

  function draw() {
    const settings = settingsOf(model);
    for (const [name, range] of Object.entries(ranges)) {
      range.update(settings[name], name !== "K" || settings.context_kind === "structured");
    }
    for (const [name, select] of Object.entries(selects)) select.update(settings[name]);
    note.textContent = STRATEGY_NOTES[settings.strategy];
    picture.replaceChildren(levelsTable(settings), legend(settings));
  }
  draw();
  return redrawOn(model, TRAITS, draw);
}

export default { render };
