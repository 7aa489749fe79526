// The shape rules of the vmap chapter's three strategies, in the browser: the mirror of
// hutchinson_course/estimators/per_point.py `strategy_shapes`, with every axis labelled by its letter.
// tests/test_widgets.py checks, in Chromium, that these rules give the shapes and bytes jax.eval_shape
// finds in the real mapped estimator, for a grid of settings.

export const STRATEGIES = ["tile", "in_axes_none", "flatten"];
export const CONTEXT_KINDS = ["global", "structured"];
export const KEY_KINDS = ["typed", "legacy"];
export const ARGUMENTS = ["x", "z", "t", "mask", "key"];

// Bytes per element, as JAX stores them: x, z, t and the traces are float32; the mask is bool; a
// typed key (dtype key<fry>) stores two uint32 words, 8 bytes, and a legacy key is those two uint32
// as a trailing axis of 2, 4 bytes each.
export function itemBytes(argument, key_kind) {
  if (argument === "mask") return 1;
  if (argument === "key") return key_kind === "typed" ? 8 : 4;
  return 4;
}

// An axis is [letter, size]; fixed-size axes are labelled by their size ("1", "2").
const axis = (name, size) => [name, size];
const fixed = (size) => [String(size), size];
const flattened = (a, b) => [`${a[0]}·${b[0]}`, a[1] * b[1]];

// The levels [{level, shapes: {argument: [[letter, size], ...]}}] a strategy handles, as in
// per_point.strategy_shapes (same level names, same order).
// settings: {B, N, D, Dc, K, context_kind, strategy, key_kind}, the widget's traits as Python names them.
export function strategyShapes({ B, N, D, Dc, K, context_kind, strategy, key_kind }) {
  const b = axis("B", B);
  const n = axis("N", N);
  const d = axis("D", D);
  const context = context_kind === "global" ? [axis("Dc", Dc)] : [axis("K", K), axis("Dc", Dc)];
  const key = key_kind === "typed" ? [] : [fixed(2)];
  const level = (name, shapes) => ({ level: name, shapes });
  const inputs = { x: [b, n, d], z: [b, ...context], t: [b, fixed(1)], mask: [b, n], key: [b, n, ...key] };
  const point = { x: [d], z: context, t: [], mask: [], key };
  if (strategy === "flatten") {
    const bn = flattened(b, n);
    const flat = { x: [bn, d], z: [bn, ...context], t: [bn], mask: [bn], key: [bn, ...key] };
    return [
      level("inputs", inputs),
      level("before the vmap", flat),
      level("inside the vmap", point),
      level("output of the vmap", { traces: [bn] }),
      level("output", { traces: [b, n] }),
    ];
  }
  let entering;
  let perBatch;
  if (strategy === "tile") {
    entering = { ...inputs, z: [b, n, ...context], t: [b, n] };
    perBatch = { x: [n, d], z: [n, ...context], t: [n], mask: [n], key: [n, ...key] };
  } else {
    entering = { ...inputs, t: [b] };
    perBatch = { x: [n, d], z: context, t: [], mask: [n], key: [n, ...key] };
  }
  return [
    level("inputs", inputs),
    level("before the outer vmap", entering),
    level("inside the outer vmap", perBatch),
    level("inside the inner vmap", point),
    level("output", { traces: [b, n] }),
  ];
}

export function arrayBytes(argument, axes, key_kind) {
  return axes.reduce((product, [, size]) => product * size, 1) * itemBytes(argument, key_kind);
}

// What the strategy builds and hands to vmap: the bytes of its "before the (outer) vmap" level.
export function logicalBytes(settings) {
  const entering = strategyShapes(settings)[1].shapes;
  return Object.entries(entering).reduce(
    (total, [argument, axes]) => total + arrayBytes(argument, axes, settings.key_kind),
    0,
  );
}
