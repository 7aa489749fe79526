// The device view (after common.js). `placement` mirrors device_view.py's `placement`, messages
// included; tests/test_widgets.py compares the two in Chromium over a grid of settings.

export function placement(numDevices, batchSize, availableDevices) {
  if (batchSize < 1) return { error: `B = ${batchSize}: a batch needs at least one element.` };
  if (numDevices < 1) return { error: `${numDevices} devices: at least one device is needed.` };
  if (numDevices > availableDevices) {
    return {
      error:
        `Only ${availableDevices} devices are available, so ${numDevices} cannot be used: jax.pmap ` +
        `cannot map an axis of ${numDevices} over them and jax.make_mesh cannot build a mesh of ` +
        `${numDevices}. (XLA's flag --xla_force_host_platform_device_count, set before JAX starts, ` +
        "decides how many CPU devices are simulated.)",
    };
  }
  const rowsPerDevice = Math.ceil(batchSize / numDevices);
  const blocks = Array.from({ length: numDevices }, (_, device) => [
    device * rowsPerDevice,
    (device + 1) * rowsPerDevice,
  ]);
  return { batch_size: batchSize, padded_size: rowsPerDevice * numDevices, blocks };
}

function strategyNote(strategy, layout, numDevices, available) {
  const rows = layout.padded_size / numDevices;
  const padded = layout.padded_size;
  const padding = padded - layout.batch_size;
  if (strategy === "pmap") {
    const fewer =
      numDevices < available
        ? ` (sharded.pmap_traces uses every local device; for ${numDevices}, jax.pmap takes devices=jax.devices()[:${numDevices}].)`
        : "";
    return (
      `jax.pmap: pad_batch pads B to ${padded}, device_blocks reshapes x_t to (${numDevices}, ${rows}, N, D), ` +
      `and device k runs the per-device function on block k: x (${rows}, N, D), mask (${rows}, N).` +
      fewer
    );
  }
  if (strategy === "shard_map") {
    return (
      `jax.shard_map: shard_batch places the padded (${padded}, N, D) arrays with NamedSharding(mesh, ` +
      `P("devices")) on a mesh of ${numDevices}; the body on device k sees its (${rows}, N, D) block. ` +
      `out_specs P("devices") keeps the traces split; the mean is psum'd and replicated (P()).`
    );
  }
  const unpad = padding
    ? ` unpad then replicates the traces (jax.reshard to P()) and drops the last ${padding} rows.`
    : "";
  return (
    `jax.jit with shardings: the same placement (shard_batch), but the program is the single-device ` +
    `one, written for (${padded}, N, D); XLA splits it along the rows and adds the cross-device sum ` +
    `for the mean.` +
    unpad
  );
}

function deviceRows(layout) {
  return layout.blocks.map(([start, stop], device) => {
    const cells = [];
    for (let row = start; row < stop; row += 1) {
      const padding = row >= layout.batch_size;
      cells.push(
        element(
          "span",
          {
            class: padding ? "hc-row hc-padding" : "hc-row",
            "data-row": row,
            "data-padding": String(padding),
            title: padding ? `padding (a copy of row 0, mask 0)` : `batch element ${row}`,
          },
          padding ? "pad" : `b${row}`,
        ),
      );
    }
    return [
      element("span", { class: "hc-device-label" }, `device ${device}`),
      element(
        "span",
        { class: "hc-device-rows", "data-device": device },
        cells.length ? cells : element("span", { class: "hc-device-empty" }, "no rows"),
      ),
    ];
  });
}

function summary(layout, numDevices) {
  const rows = layout.padded_size / numDevices;
  const padding = layout.padded_size - layout.batch_size;
  const idle = layout.blocks.filter(([start]) => start >= layout.batch_size).length;
  let text = `B = ${layout.batch_size} on ${numDevices} device${numDevices > 1 ? "s" : ""}: ${rows} row${rows > 1 ? "s" : ""} each. `;
  text += padding
    ? `${layout.batch_size} is not a multiple of ${numDevices}, so ${padding} padding row${padding > 1 ? "s" : ""} (copies of row 0 with mask 0, traces exactly 0) make it ${layout.padded_size}.`
    : "No padding needed.";
  if (idle) text += ` ${idle} device${idle > 1 ? "s hold" : " holds"} only padding.`;
  return text;
}

function render({ model, el }) {
  const limits = model.get("limits");
  const set = (name) => (value) => setTraits(model, { [name]: value });
  const devices = rangeControl({
    label: "devices",
    min: limits.devices[0],
    max: limits.devices[1],
    value: model.get("devices"),
    onInput: set("devices"),
  });
  const batch = rangeControl({
    label: "B",
    min: limits.B[0],
    max: limits.B[1],
    value: model.get("B"),
    onInput: set("B"),
  });
  const strategy = selectControl({
    label: "strategy",
    options: [
      ["pmap", "jax.pmap"],
      ["shard_map", "jax.shard_map"],
      ["jit", "jax.jit with shardings"],
    ],
    value: model.get("strategy"),
    onChange: set("strategy"),
  });
  const picture = element("div", { "aria-live": "polite" });
  el.append(
    element(
      "div",
      { class: "hc-widget hc-device-view" },
      element(
        "fieldset",
        { class: "hc-controls" },
        element("legend", {}, "Device view"),
        devices.control,
        batch.control,
        strategy.control,
      ),
      picture,
    ),
  );

  function draw() {
    const numDevices = model.get("devices");
    const batchSize = model.get("B");
    const available = model.get("available_devices");
    devices.update(numDevices);
    batch.update(batchSize);
    strategy.update(model.get("strategy"));
    const layout = placement(numDevices, batchSize, available);
    if (layout.error) {
      picture.replaceChildren(element("p", { class: "hc-message", role: "status" }, layout.error));
      return;
    }
    picture.replaceChildren(
      element("p", { class: "hc-summary" }, summary(layout, numDevices)),
      element("div", { class: "hc-devices" }, deviceRows(layout)),
      element("p", { class: "hc-note" }, strategyNote(model.get("strategy"), layout, numDevices, available)),
      element(
        "p",
        { class: "hc-legend" },
        element("span", { class: "hc-row" }, "b3"),
        " batch element 3 (its N points)  ",
        element("span", { class: "hc-row hc-padding" }, "pad"),
        ` padding row. ${available} devices available.`,
      ),
    );
  }
  draw();
  return redrawOn(model, ["devices", "B", "strategy", "available_devices"], draw);
}

export default { render };
