// The probe explorer's view (after common.js): draws the histograms probe_explorer.py computed.

const WIDTH = 640;
const HEIGHT = 250;
const MARGIN = { left: 44, right: 12, top: 26, bottom: 38 };
const EXACT_COLOUR = "#d55e00";
const KIND_NAMES = { rademacher: "Rademacher", gaussian: "Gaussian" };

function round(value, digits = 3) {
  return Number(value.toPrecision(digits)).toString();
}

function histogram(data, kind, numProbes, label) {
  const entry = data.kinds[kind].counts[String(numProbes)];
  const { low, high } = data.kinds[kind];
  const { bins, repetitions, exact } = data;
  const binWidth = (high - low) / bins;
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (value) => MARGIN.left + ((value - low) / (high - low)) * plotWidth;
  const sigma = entry.theory_std;
  // The normal density with the theory's standard deviation, in counts per bin.
  const density = (value) =>
    (repetitions * binWidth * Math.exp(-0.5 * ((value - exact) / sigma) ** 2)) / (sigma * Math.sqrt(2 * Math.PI));
  const peak = Math.max(...entry.counts, sigma > 0 ? Math.min(density(exact), repetitions) : 0, 1);
  const y = (count) => MARGIN.top + plotHeight - (count / peak) * plotHeight;

  const bars = entry.counts.map((count, bin) =>
    svgElement("rect", {
      x: x(low + bin * binWidth) + 0.5,
      y: y(count),
      width: Math.max(plotWidth / bins - 1, 0.5),
      height: MARGIN.top + plotHeight - y(count),
      fill: "currentColor",
      "fill-opacity": 0.35,
      "data-count": count,
    }),
  );
  const marks = [];
  if (sigma > 0) {
    const points = Array.from({ length: 201 }, (_, i) => low + ((high - low) * i) / 200)
      .map((value) => `${x(value).toFixed(1)},${Math.max(y(Math.min(density(value), peak)), MARGIN.top).toFixed(1)}`)
      .join(" ");
    marks.push(svgElement("polyline", { points, fill: "none", stroke: "currentColor", "stroke-width": 1.5 }));
    for (const side of [-1, 1]) {
      const at = exact + side * sigma;
      if (at > low && at < high) {
        marks.push(
          svgElement("line", {
            x1: x(at), x2: x(at), y1: MARGIN.top, y2: MARGIN.top + plotHeight,
            stroke: "currentColor", "stroke-dasharray": "4 3", "data-theory": side,
          }),
        );
      }
    }
  }
  marks.push(
    svgElement("line", {
      x1: x(exact), x2: x(exact), y1: MARGIN.top - 6, y2: MARGIN.top + plotHeight,
      stroke: EXACT_COLOUR, "stroke-width": 2.5, "data-exact": exact,
    }),
    svgElement("text", { x: x(exact) + 4, y: MARGIN.top - 10 }, `exact tr(${label}) = ${round(exact, 4)}`),
  );
  const ticks = Array.from({ length: 5 }, (_, i) => low + ((high - low) * i) / 4).map((value) => [
    svgElement("line", {
      x1: x(value), x2: x(value), y1: MARGIN.top + plotHeight, y2: MARGIN.top + plotHeight + 4,
      stroke: "currentColor",
    }),
    svgElement("text", { x: x(value), y: MARGIN.top + plotHeight + 16, "text-anchor": "middle" }, round(value)),
  ]);
  const axes = [
    svgElement("line", {
      x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: MARGIN.top + plotHeight, y2: MARGIN.top + plotHeight,
      stroke: "currentColor",
    }),
    svgElement("text", { x: MARGIN.left - 6, y: MARGIN.top + 4, "text-anchor": "end" }, String(Math.round(peak))),
    svgElement("text", { x: MARGIN.left - 6, y: MARGIN.top + plotHeight, "text-anchor": "end" }, "0"),
    svgElement("text", { x: 12, y: MARGIN.top + plotHeight / 2, transform: `rotate(-90 12 ${MARGIN.top + plotHeight / 2})`, "text-anchor": "middle" }, "estimates"),
    svgElement(
      "text",
      { x: MARGIN.left + plotWidth / 2, y: HEIGHT - 4, "text-anchor": "middle" },
      `estimate of tr(${label}), the mean of ${numProbes} probe${numProbes > 1 ? "s" : ""}`,
    ),
  ];
  const title = svgElement(
    "title",
    {},
    `Histogram of ${repetitions} estimates with ${numProbes} ${KIND_NAMES[kind]} probes; exact trace ${round(exact, 4)}`,
  );
  return svgElement(
    "svg",
    {
      class: "hc-histogram",
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      width: WIDTH,
      height: HEIGHT,
      role: "img",
      "data-kind": kind,
      "data-num-probes": numProbes,
    },
    title,
    bars,
    marks,
    ticks,
    axes,
  );
}

function describe(data, kind, numProbes, label) {
  const entry = data.kinds[kind].counts[String(numProbes)];
  const outside = entry.below + entry.above;
  return (
    `${data.repetitions} estimates of tr(${label}), each the mean of ${numProbes} ${KIND_NAMES[kind]} ` +
    `probe${numProbes > 1 ? "s" : ""}: mean ${round(entry.mean, 4)}, standard deviation ` +
    `${round(entry.std)}. Theory: √(Var / ${numProbes}) = ${round(entry.theory_std)}, with Var = ` +
    `${round(data.kinds[kind].variance)} for one probe (dashed lines: exact ± one theoretical standard ` +
    "deviation; curve: the normal density with that deviation; the axis spans 4 single-probe " +
    "standard deviations either side of the exact trace)." +
    (outside ? ` ${outside} estimate${outside > 1 ? "s fall" : " falls"} outside the axis.` : "")
  );
}

function render({ model, el }) {
  const data = model.get("data");
  const counts = data.probe_counts;
  const kind = selectControl({
    label: "probe kind",
    options: Object.entries(KIND_NAMES),
    value: model.get("probe_kind"),
    onChange: (value) => setTraits(model, { probe_kind: value }),
  });
  const number = rangeControl({
    label: "number of probes",
    min: 0,
    max: counts.length - 1,
    value: counts.indexOf(model.get("num_probes")),
    describe: (index) => String(counts[index]),
    onInput: (index) => setTraits(model, { num_probes: counts[index] }),
  });
  const picture = element("div");
  const text = element("p", { class: "hc-note", "aria-live": "polite" });
  el.append(
    element(
      "div",
      { class: "hc-widget hc-probe-explorer" },
      element("fieldset", { class: "hc-controls" }, element("legend", {}, "Probe explorer"), kind.control, number.control),
      picture,
      text,
    ),
  );

  function draw() {
    const probeKind = model.get("probe_kind");
    const numProbes = model.get("num_probes");
    const label = model.get("label");
    kind.update(probeKind);
    number.update(counts.indexOf(numProbes));
    picture.replaceChildren(histogram(data, probeKind, numProbes, label));
    text.textContent = describe(data, probeKind, numProbes, label);
  }
  draw();
  return redrawOn(model, ["probe_kind", "num_probes", "label"], draw);
}

export default { render };
