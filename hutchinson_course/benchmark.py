"""Measure the course's estimators: time, operation counts and memory, reported as ratios.

    python -m hutchinson_course.benchmark --out benchmark.json     (or: hutchinson-benchmark)

Every ratio divides two measurements taken in the same run on the same inputs. A time is the
median of repeated calls of the compiled program (after a warm-up call), a peak memory the
median of repeated fresh processes; each comes with its spread (max - min). Operation counts
and compiled memory are XLA's own figures (``cost_analysis``, ``memory_analysis``). The tiling
chapter imports the measuring functions from here, so the chapter and this command measure the
same way.

The sections:

- ``seed_vs_final``: the tiled seed design (z tiled to every point, concatenated field) against
  the memory-aware estimator, unchunked and chunked, at the large size;
- ``strategies``: tile, ``in_axes=None`` and flatten with the concatenated and the split field, at
  the large size (what hoisting the context projection and splitting the first layer save);
- ``loop_vmap_jit``: a Python loop over the points against ``jax.vmap`` (not compiled as a
  whole) against ``jax.jit(jax.vmap(...))``, at the small size;
- ``floor``: the memory-aware estimator against a bare batched jvp of the same field with the
  same probes, the least any Hutchinson estimator must do (one jvp per probe); against the same
  jvp with the probes drawn in the same program (the work the bare floor skips), with its output
  summed per point, and with all of the estimator's work in bare array operations (probes, jvp,
  quadratic forms, mean, mask), whose traces must equal the estimator's;
- ``matfree``: the estimator against ``matfree.stochtrace`` with the same probes, given the course's
  structure and as a matfree user calls it (the whole field's jvp at each point);
- ``exact_vs_hutchinson``: exact traces (D jvps) against the estimator, for growing D;
- ``roofline``: the estimator's achieved operation and byte rates against this machine's, measured
  in the same run (a large matrix product, a large elementwise pass);
- ``scaling``: time and peak memory of the seed design and the final estimator as B, N and the
  number of probes grow (``--plot`` draws it).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime
import functools
import json
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from .estimators import memory_aware, per_point
from .estimators.core import sample_probes
from .estimators.matrix_free import jvp_matvec
from .estimators.fields import vector_field as concatenated_field
from .estimators.memory_aware import FIELDS, context_projection, field_from_projection, split_field, strategy_traces
from .timing import Timing

SEED_DESIGN = "tile/concatenated"
MEMORY_AWARE = "memory_aware"
ESTIMATORS = tuple(f"{strategy}/{field}" for field in FIELDS for strategy in per_point.STRATEGIES) + (MEMORY_AWARE,)
CLEAR_REFS = "/proc/self/clear_refs"  # Linux: writing "5" resets the process's peak resident memory


@dataclasses.dataclass(frozen=True)
class Problem:
    """The sizes of one measurement: B batches of N points in D dimensions, contexts of Dc, and the
    estimator's number of probes and hidden layers."""

    B: int
    N: int
    Dc: int
    D: int = 2
    num_probes: int = 8
    hidden_sizes: tuple[int, ...] = (32, 32)

    def inputs(self):
        """(params, x_t (B, N, D), z (B, Dc), t (B, 1), mask (B, N), key), the same for the same Problem.

        The parameters have the layout of ``fields.init_field_params`` (weights of variance
        1 / fan_in, biases of standard deviation 0.1). Everything is drawn with NumPy, which
        compiles nothing: on a CPU each new shape of a jax.random call costs a compilation.
        """
        rng = np.random.default_rng(0)
        sizes = (self.D + self.Dc + 1, *self.hidden_sizes, self.D)
        params = {}
        for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            params[f"w{layer}"] = rng.normal(size=(fan_in, fan_out)) / np.sqrt(fan_in)
            params[f"b{layer}"] = 0.1 * rng.normal(size=fan_out)
        x_t = rng.normal(size=(self.B, self.N, self.D))
        z = rng.normal(size=(self.B, self.Dc))
        t = rng.uniform(size=(self.B, 1))
        arrays = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), (params, x_t, z, t, np.ones((self.B, self.N))))
        return jax.block_until_ready((*arrays, jax.random.key(2)))

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def estimator(name: str, problem: Problem, chunk_size: int | None = None) -> Callable:
    """The estimator ``name`` as a function of (params, x_t, z, t, mask, key) -> traces (B, N).

    ``name`` is "memory_aware" or "<strategy>/<field>" with a strategy of the vmap chapter
    ("tile", "in_axes_none", "flatten") and a field ("concatenated", "split").
    """
    if name == MEMORY_AWARE:
        return functools.partial(memory_aware.batch_traces, num_probes=problem.num_probes, chunk_size=chunk_size)
    strategy, _, field = name.partition("/")
    if name not in ESTIMATORS or chunk_size is not None:
        raise ValueError(f"estimator must be one of {ESTIMATORS} (only {MEMORY_AWARE} takes a chunk_size), "
                         f"found {name!r} with chunk_size={chunk_size}")
    return functools.partial(strategy_traces, field=field, strategy=strategy, num_probes=problem.num_probes)


# Compiled programs: XLA's own figures -----------------------------------------------------

def compile_program(fn: Callable, *args, compiler_options: dict | None = None) -> jax.stages.Compiled:
    """jax.jit(fn) lowered for these arguments and compiled (``compiler_options`` are XLA's debug options)."""
    return jax.jit(fn).lower(*args).compile(compiler_options=compiler_options)


def compiled_stats(compiled: jax.stages.Compiled) -> dict[str, float]:
    """What XLA says about a compiled program: its count of arithmetic operations ("flops"; a loop's
    body counts once, whatever its trip count) and the bytes it allocates for its arguments, its
    outputs and its temporaries ("temp_bytes"). The temporaries of fused library kernels are not
    included (the tiling chapter measures how much that leaves out)."""
    memory = compiled.memory_analysis()
    return {"flops": float(compiled.cost_analysis()["flops"]),
            "argument_bytes": int(memory.argument_size_in_bytes),
            "output_bytes": int(memory.output_size_in_bytes),
            "temp_bytes": int(memory.temp_size_in_bytes)}


_DTYPE_BYTES = {"pred": 1, "s8": 1, "u8": 1, "f16": 2, "bf16": 2, "s16": 2, "u16": 2, "f32": 4, "s32": 4, "u32": 4,
                "f64": 8, "s64": 8, "u64": 8}
_INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%(?P<name>\S+) = (?P<dtype>[a-z]+\d*)\[(?P<dims>[\d,]*)\]\{[^}]*\} "
                          r"(?P<opcode>[\w-]+)\(")


def entry_buffers(compiled: jax.stages.Compiled) -> list[dict]:
    """The arrays the optimized program's top level (its ENTRY computation) produces, largest first.

    Each is {"name", "opcode", "shape", "bytes"}. These are the buffers XLA allocates between
    kernels; what a fusion computes inside itself is not among them.
    """
    text = compiled.as_text()
    entry = text[text.index("\nENTRY "):]
    buffers = []
    for line in entry.splitlines()[1:]:
        match = _INSTRUCTION.match(line)
        if match is None or match["opcode"] in ("parameter", "constant", "get-tuple-element", "bitcast"):
            continue
        shape = tuple(int(d) for d in match["dims"].split(",") if d)
        buffers.append({"name": match["name"], "opcode": match["opcode"], "shape": shape,
                        "bytes": _DTYPE_BYTES.get(match["dtype"], 4) * int(np.prod(shape, dtype=np.int64))})
    return sorted(buffers, key=lambda buffer: -buffer["bytes"])


# Peak memory of a run, measured in a fresh process -----------------------------------------

@dataclasses.dataclass(frozen=True)
class Measurement:
    """The median of ``repeats`` measurements and their spread (max - min), in ``unit``."""

    median: float
    spread: float
    repeats: int
    unit: str

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def timing_measurement(timing: Timing) -> Measurement:
    return Measurement(timing.median, timing.spread, timing.repeats, "s")


def time_interleaved(calls: dict[str, tuple[Callable, tuple]], *, repeats: int = 7) -> dict[str, Timing]:
    """Time several calls, each ``calls[label] = (fn, args)``, round by round.

    Every call is made once to warm up (compiling if it must). Then each of ``repeats`` rounds
    makes, for each call in turn, one untimed call and one timed call, waiting for the result
    (``jax.block_until_ready``). A disturbance, such as another process taking the CPU for a
    while, falls on all of them alike, so ratios of their medians stay fair; and the untimed call
    before each timed one leaves the caches as the program itself leaves them, not as the
    previous program did (a program that touches gigabytes would otherwise slow the next one).
    Returns the median and spread of each, as ``timing.time_call`` does.
    """
    for fn, args in calls.values():
        jax.block_until_ready(fn(*args))
    seconds = {label: [] for label in calls}
    for _ in range(repeats):
        for label, (fn, args) in calls.items():
            jax.block_until_ready(fn(*args))
            start = time.perf_counter()
            jax.block_until_ready(fn(*args))
            seconds[label].append(time.perf_counter() - start)
    return {label: Timing(statistics.median(s), max(s) - min(s), repeats) for label, s in seconds.items()}


def peak_memory_supported() -> bool:
    """Peak memory needs Linux's /proc/self/clear_refs, which resets the high-water mark of a process."""
    return os.path.exists(CLEAR_REFS) and os.access(CLEAR_REFS, os.W_OK)


def peak_memory(name: str, problem: Problem, chunk_size: int | None = None, *, repeats: int = 1,
                xla_flags: str = "") -> Measurement | None:
    """The memory one call of the estimator adds to its process at its peak, in bytes (None where
    it cannot be measured).

    Each repeat runs in a fresh Python process, so that no memory freed by an earlier run can be
    reused unseen. The process builds the inputs, compiles, warms up XLA's runtime on a small
    unrelated program, records its resident memory, resets the high-water mark, calls the
    estimator once and reads the new high-water mark. ``xla_flags`` are added to XLA_FLAGS there.
    """
    if repeats < 1 or not peak_memory_supported():
        return None
    spec = json.dumps({"estimator": name, "problem": problem.as_dict(), "chunk_size": chunk_size})
    env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {xla_flags}".strip())
    peaks = []
    for _ in range(repeats):
        done = subprocess.run([sys.executable, "-m", "hutchinson_course.benchmark", "--peak-child", spec],
                              env=env, capture_output=True, text=True, check=True)
        peaks.append(json.loads(done.stdout.strip().splitlines()[-1])["peak_bytes"])
    return Measurement(statistics.median(peaks), max(peaks) - min(peaks), repeats, "bytes")


def _resident_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        return 1024 * int(re.search(rf"{field}:\s+(\d+) kB", status.read()).group(1))


def _measure_peak_here(spec: dict) -> int:
    problem = Problem(**{**spec["problem"], "hidden_sizes": tuple(spec["problem"]["hidden_sizes"])})
    args = problem.inputs()
    compiled = compile_program(estimator(spec["estimator"], problem, spec["chunk_size"]), *args)
    warm_up = jax.jit(lambda a: jnp.tanh(a @ a).sum())  # starts the runtime's threads and kernels
    jax.block_until_ready(warm_up(jnp.ones((64, 64))))
    before = _resident_bytes("VmRSS")
    with open(CLEAR_REFS, "w") as clear_refs:
        clear_refs.write("5")
    jax.block_until_ready(compiled(*args))
    return _resident_bytes("VmHWM") - before


# The benchmark's sections ---------------------------------------------------------------

def _ratio(measurements: dict, quantity: str, numerator: str, denominator: str) -> dict:
    """One ratio, from the medians of two measurements of the same section."""
    top, bottom = (measurements[label][quantity] for label in (numerator, denominator))
    top, bottom = (m.median if isinstance(m, Measurement) else m for m in (top, bottom))
    return {"quantity": quantity, "numerator": numerator, "denominator": denominator, "value": top / bottom}


def _compile_and_time(contenders: dict[str, tuple[Callable, tuple]], *, repeats: int,
                      compiled_figures: tuple[str, ...] = ("flops",)) -> tuple[dict, dict]:
    """Compile each contender, keep XLA's ``compiled_figures`` and its output, and time them interleaved.

    Returns (measurements {label: {figure: value, "time": Measurement}}, outputs {label: numpy array}).
    """
    compiled = {label: compile_program(fn, *args) for label, (fn, args) in contenders.items()}
    outputs = {label: np.asarray(program(*contenders[label][1])) for label, program in compiled.items()}
    timings = time_interleaved({label: (program, contenders[label][1]) for label, program in compiled.items()},
                               repeats=repeats)
    measurements = {label: {**{figure: compiled_stats(program)[figure] for figure in compiled_figures},
                            "time": timing_measurement(timings[label])} for label, program in compiled.items()}
    return measurements, outputs


def _largest_difference(outputs: dict) -> float:
    first = next(iter(outputs.values()))
    return float(max(np.abs(output - first).max() for output in outputs.values()))


def seed_vs_final(problem: Problem, *, repeats: int, peak_repeats: int, chunk_size: int) -> dict:
    """The tiled seed design against the memory-aware estimator, unchunked and chunked."""
    args = problem.inputs()
    chunked = f"memory-aware, chunk_size={chunk_size}"
    names = {"tiled seed design": (SEED_DESIGN, None), "memory-aware": (MEMORY_AWARE, None),
             chunked: (MEMORY_AWARE, chunk_size)}
    measurements, outputs = _compile_and_time(
        {label: (estimator(name, problem, chunk), args) for label, (name, chunk) in names.items()},
        repeats=repeats, compiled_figures=("flops", "temp_bytes"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:  # fresh processes, two at a time
        peaks = {label: pool.submit(peak_memory, name, problem, chunk, repeats=peak_repeats)
                 for label, (name, chunk) in names.items()}
        for label, peak in peaks.items():
            if peak.result() is not None:
                measurements[label]["peak_bytes"] = peak.result()
    quantities = ["time", "flops", "temp_bytes"] + (["peak_bytes"] if "peak_bytes" in measurements[chunked] else [])
    ratios = [_ratio(measurements, q, "tiled seed design", "memory-aware") for q in quantities]
    # Not flops: XLA counts the body of the chunked program's loop once, not once per chunk.
    ratios += [_ratio(measurements, q, "memory-aware", chunked) for q in quantities if q != "flops"]
    ratios += [_ratio(measurements, "time", "tiled seed design", chunked)]
    return {"title": "final estimator against the tiled seed design", "problem": problem.as_dict(),
            "measurements": measurements, "ratios": ratios, "max_abs_difference": _largest_difference(outputs)}


def strategies(problem: Problem, *, repeats: int) -> dict:
    """The three strategies of the vmap chapter with both fields: time, flops and compiled temporaries."""
    args = problem.inputs()
    labels = {f"{field}, {strategy}": f"{strategy}/{field}" for field in FIELDS for strategy in per_point.STRATEGIES}
    contenders = {label: (estimator(name, problem), args) for label, name in labels.items()}
    measurements, outputs = _compile_and_time(contenders, repeats=repeats, compiled_figures=("flops", "temp_bytes"))
    ratios = []
    for field in FIELDS:  # what in_axes=None saves with each field
        for strategy in ("tile", "flatten"):
            ratios += [_ratio(measurements, q, f"{field}, {strategy}", f"{field}, in_axes_none")
                       for q in ("time", "flops")]
    for strategy in per_point.STRATEGIES:  # what splitting the first layer saves with each strategy
        ratios += [_ratio(measurements, q, f"concatenated, {strategy}", f"split, {strategy}")
                   for q in ("time", "flops", "temp_bytes")]
    return {"title": "tile, in_axes=None and flatten, with the concatenated and the split field",
            "problem": problem.as_dict(), "measurements": measurements, "ratios": ratios,
            "max_abs_difference": _largest_difference(outputs)}


def loop_vmap_jit(problem: Problem, *, repeats: int) -> dict:
    """A Python loop over the B * N points, jax.vmap without jit, and jax.jit(jax.vmap(...))."""
    params, x_t, z, t, mask, key = problem.inputs()
    keys = jax.random.split(key, mask.shape)
    num_probes = problem.num_probes

    one_point = functools.partial(per_point.point_trace, num_probes=num_probes,
                                  jacobian_matvec=jvp_matvec(functools.partial(split_field, params)))

    def python_loop(x_t, z, t, mask, keys):
        return jnp.array([[one_point(x_t[b, n], z[b], t[b, 0], mask[b, n], keys[b, n]) for n in range(problem.N)]
                          for b in range(problem.B)])

    def vmapped(x_t, z, t, mask, keys):
        return per_point.traces_in_axes_none(one_point, x_t, z, t, mask, keys)

    inputs = (x_t, z, t, mask, keys)
    timings = time_interleaved({"python loop": (python_loop, inputs), "vmap": (vmapped, inputs),
                                "jit(vmap)": (jax.jit(vmapped), inputs)}, repeats=repeats)
    measurements = {label: {"time": timing_measurement(timing)} for label, timing in timings.items()}
    ratios = [_ratio(measurements, "time", "python loop", "vmap"), _ratio(measurements, "time", "vmap", "jit(vmap)"),
              _ratio(measurements, "time", "python loop", "jit(vmap)")]
    return {"title": "a Python loop against vmap against jit(vmap)", "problem": problem.as_dict(),
            "measurements": measurements, "ratios": ratios}


def batched_jvp(params, x_t: jax.Array, z: jax.Array, t: jax.Array, probes: jax.Array) -> jax.Array:
    """J eps for every probe of every point: (B, N, P, D), the split field's context projection
    computed once per batch element. x_t: (B, N, D), z: (B, Dc), t: (B, 1), probes: (B, N, P, D)."""
    def batch_products(x_points, z_ctx, t_val, batch_probes):
        projection = context_projection(params, z_ctx, t_val)

        def product(x_point, eps):
            return jax.jvp(lambda x: field_from_projection(params, x, projection), (x_point,), (eps,))[1]

        return jax.vmap(jax.vmap(product, in_axes=(None, 0)))(x_points, batch_probes)

    return jax.vmap(batch_products)(x_t, z, t, probes)


@functools.partial(jax.jit, static_argnames=("shape", "num_probes", "dim"))
def point_probes(key: jax.Array, shape: tuple[int, int], num_probes: int, dim: int) -> jax.Array:
    """The probes the estimators draw: one key per point from ``key``, then (P, D) per point. Returns (B, N, P, D)."""
    keys = jax.random.split(key, shape)
    return jax.vmap(jax.vmap(lambda k: sample_probes(k, num_probes, dim)))(keys)


def probes_and_batched_jvp(params, x_t: jax.Array, z: jax.Array, t: jax.Array, key: jax.Array, *,
                           num_probes: int) -> jax.Array:
    """The floor with the work it would otherwise skip: draw the estimator's probes (one key per point,
    then (P, D) per point), then the batched jvp. Returns (B, N, P, D)."""
    probes = point_probes(key, x_t.shape[:2], num_probes, x_t.shape[-1])
    return batched_jvp(params, x_t, z, t, probes)


def probes_jvp_and_traces(params, x_t: jax.Array, z: jax.Array, t: jax.Array, mask: jax.Array, key: jax.Array, *,
                          num_probes: int) -> jax.Array:
    """The floor with all the estimator's work, in bare array operations: draw the probes, the batched
    jvp, then eps . J eps averaged over the probes and zero at padding. Returns traces (B, N)."""
    probes = point_probes(key, x_t.shape[:2], num_probes, x_t.shape[-1])
    products = batched_jvp(params, x_t, z, t, probes)  # (B, N, P, D)
    return jnp.where(mask != 0, jnp.mean(jnp.sum(probes * products, axis=-1), axis=-1), 0.0)


def probes_jvp_and_sum(params, x_t: jax.Array, z: jax.Array, t: jax.Array, key: jax.Array, *,
                       num_probes: int) -> jax.Array:
    """The drawn floor with its products summed to one number per point: (B, N). Between the two
    above, it shows what reducing the jvp's output costs by itself, whatever the reduction computes."""
    return jnp.sum(probes_and_batched_jvp(params, x_t, z, t, key, num_probes=num_probes), axis=(-2, -1))


FLOOR_CONTENDERS = ("batched jvp", "probes and batched jvp", "probes, batched jvp, summed",
                    "probes, batched jvp, traces")


def floor(problem: Problem, *, repeats: int) -> dict:
    """The memory-aware estimator against the bare batched jvp it cannot do without, given the probes;
    against the same jvp with the probes drawn in the same program (the work the bare floor skips);
    with its output summed per point; and with all the estimator's work written as bare array
    operations (probes, jvp, quadratic forms, mean, mask): the floor an estimator is held to."""
    params, x_t, z, t, mask, key = args = problem.inputs()
    probes = jax.block_until_ready(point_probes(key, mask.shape, problem.num_probes, problem.D))
    bound = functools.partial(functools.partial, num_probes=problem.num_probes)
    bare, drawn, summed, traces = FLOOR_CONTENDERS
    measurements, outputs = _compile_and_time({
        "estimator": (estimator(MEMORY_AWARE, problem), args),
        bare: (batched_jvp, (params, x_t, z, t, probes)),
        drawn: (bound(probes_and_batched_jvp), (params, x_t, z, t, key)),
        summed: (bound(probes_jvp_and_sum), (params, x_t, z, t, key)),
        traces: (bound(probes_jvp_and_traces), args)}, repeats=repeats)
    ratios = [_ratio(measurements, q, "estimator", traces) for q in ("time", "flops")]
    ratios += [_ratio(measurements, q, "estimator", bare) for q in ("time", "flops")]
    ratios += [_ratio(measurements, "time", drawn, bare), _ratio(measurements, "time", summed, drawn),
               _ratio(measurements, "time", traces, summed)]
    difference = float(np.abs(outputs["estimator"] - outputs[traces]).max())
    return {"title": "the estimator against a bare batched jvp with the same probes (the floor)",
            "problem": problem.as_dict(), "measurements": measurements, "ratios": ratios,
            "max_abs_difference": difference}


def matfree_traces(stochtrace, params, x_t, z, t, mask, key, *, num_probes: int) -> jax.Array:
    """The memory-aware estimator's structure with matfree's Monte Carlo trace estimator at each point."""
    keys = jax.random.split(key, mask.shape)
    sampler = stochtrace.sampler_signs(jnp.zeros(x_t.shape[-1], x_t.dtype), num=num_probes)  # Rademacher (P, D)
    estimate = stochtrace.estimator_monte_carlo(stochtrace.monte_carlo_trace(), sampler)

    def batch_traces(x_points, z_ctx, t_val, mask_points, point_keys):
        projection = context_projection(params, z_ctx, t_val)

        def one_point(x_point, mask_val, point_key):
            matvec = lambda v: jax.jvp(lambda x: field_from_projection(params, x, projection), (x_point,), (v,))[1]
            return jnp.where(mask_val != 0, estimate(matvec, point_key), 0.0)

        return jax.vmap(one_point)(x_points, mask_points, point_keys)

    return jax.vmap(batch_traces)(x_t, z, t, mask, keys)


def matfree_user_traces(stochtrace, params, x_t, z, t, mask, key, *, num_probes: int) -> jax.Array:
    """What a matfree user writes: matfree's Monte Carlo estimator on the jvp of the whole field
    (``fields.vector_field``, context concatenated into the input) at each point, mapped over every
    point with vmap, the same key per point as the course's estimator."""
    keys = jax.random.split(key, mask.shape)
    sampler = stochtrace.sampler_signs(jnp.zeros(x_t.shape[-1], x_t.dtype), num=num_probes)
    estimate = stochtrace.estimator_monte_carlo(stochtrace.monte_carlo_trace(), sampler)

    def one_point(x_point, z_ctx, t_val, point_key):
        matvec = lambda v: jax.jvp(lambda x: concatenated_field(params, x, z_ctx, t_val), (x_point,), (v,))[1]
        return estimate(matvec, point_key)

    traces = jax.vmap(jax.vmap(one_point, in_axes=(0, None, None, 0)))(x_t, z, t, keys)
    return jnp.where(mask != 0, traces, 0.0)


def matfree_comparison(problem: Problem, *, repeats: int) -> dict:
    """The estimator against matfree.stochtrace twice: given the course's structure (the context
    projection once per batch element), and as a matfree user would call it (the whole field's jvp at
    each point). matfree is a pinned dependency of the course."""
    from matfree import stochtrace

    title = "the estimator against matfree.stochtrace"
    args = problem.inputs()
    options = dict(num_probes=problem.num_probes)
    measurements, outputs = _compile_and_time(
        {"estimator": (estimator(MEMORY_AWARE, problem), args),
         "matfree, the course's structure": (functools.partial(matfree_traces, stochtrace, **options), args),
         "matfree, as a user calls it": (functools.partial(matfree_user_traces, stochtrace, **options), args)},
        repeats=repeats)
    ratios = [_ratio(measurements, q, other, "estimator") for other in
              ("matfree, the course's structure", "matfree, as a user calls it") for q in ("time", "flops")]
    ratios.append(_ratio(measurements, "time", "estimator", "matfree, as a user calls it"))
    return {"title": title, "matfree_version": versions()["matfree"], "problem": problem.as_dict(),
            "measurements": measurements, "ratios": ratios, "max_abs_difference": _largest_difference(outputs)}


def machine_rates(*, repeats: int, matrix_size: int = 2048, copy_bytes: int = 2**28) -> dict:
    """This machine's attainable rates, measured now: a large matrix product for arithmetic
    (2 n^3 operations) and a large elementwise pass for memory traffic (it reads and writes
    ``copy_bytes`` each). Returns {"flops_per_second", "bytes_per_second"} as Measurements."""
    matrix = jnp.ones((matrix_size, matrix_size), jnp.float32)
    vector = jnp.ones(copy_bytes // 4, jnp.float32)
    timings = time_interleaved({"matmul": (jax.jit(lambda a: a @ a), (matrix,)),
                                "copy": (jax.jit(lambda v: v * 1.5), (vector,))}, repeats=repeats)
    work = {"matmul": 2.0 * matrix_size**3, "copy": 2.0 * copy_bytes}

    def rate(label):  # the median rate and the spread of rates over the repeats' extremes
        timing = timings[label]
        fastest, slowest = max(timing.median - timing.spread, 1e-12), timing.median + timing.spread
        return Measurement(work[label] / timing.median, work[label] / fastest - work[label] / slowest,
                           timing.repeats, "1/s")

    return {"flops_per_second": rate("matmul"), "bytes_per_second": rate("copy")}


def roofline(problem: Problem, *, repeats: int, machine_sizes: tuple[int, int] = (2048, 2**28)) -> dict:
    """How close the final estimator comes to this machine's limits: its achieved operation and byte
    rates (XLA's counts over the measured time) against the attainable ones measured in the same run,
    and which limit binds (its operations per byte against the machine's)."""
    args = problem.inputs()
    compiled = compile_program(estimator(MEMORY_AWARE, problem), *args)
    seconds = time_interleaved({"estimator": (compiled, args)}, repeats=repeats)["estimator"].median
    cost = compiled.cost_analysis()
    rates = machine_rates(repeats=repeats, matrix_size=machine_sizes[0], copy_bytes=machine_sizes[1])
    achieved = {"flops_per_second": float(cost["flops"]) / seconds,
                "bytes_per_second": float(cost["bytes accessed"]) / seconds}
    fractions = {name: achieved[name] / rates[name].median for name in achieved}
    intensity = float(cost["flops"]) / float(cost["bytes accessed"])
    balance = rates["flops_per_second"].median / rates["bytes_per_second"].median
    return {"title": "the estimator against this machine's attainable rates (roofline)",
            "problem": problem.as_dict(), "attainable": rates, "achieved": achieved, "fractions": fractions,
            "machine_sizes": {"matrix_size": machine_sizes[0], "copy_bytes": machine_sizes[1]},
            "flops": float(cost["flops"]), "bytes_accessed": float(cost["bytes accessed"]), "seconds": seconds,
            "operations_per_byte": intensity, "machine_operations_per_byte": balance,
            "binding_limit": "memory bandwidth" if intensity < balance else "arithmetic"}


SCALED = ("B", "N", "num_probes")


def scaling(problem: Problem, *, factors: tuple[int, ...], repeats: int, peak_repeats: int) -> dict:
    """Time and peak memory of the seed design and the final estimator as B, N and the number of
    probes grow by ``factors`` from ``problem``, one quantity at a time. Returns rows
    {"grows", "size", "estimator", "time", "peak_bytes"} and, per quantity and estimator, the slope of
    log time against log size (1 is linear)."""
    rows = []
    for grows in SCALED:
        for factor in factors:
            sized = dataclasses.replace(problem, **{grows: getattr(problem, grows) * factor})
            args = sized.inputs()
            names = {"tiled seed design": SEED_DESIGN, "final estimator": MEMORY_AWARE}
            timings = time_interleaved({label: (compile_program(estimator(name, sized), *args), args)
                                        for label, name in names.items()}, repeats=repeats)
            for label, name in names.items():
                peak = peak_memory(name, sized, repeats=peak_repeats)
                rows.append({"grows": grows, "size": getattr(sized, grows), "estimator": label,
                             "time": timing_measurement(timings[label]), "peak_bytes": peak})
    slopes = []
    for grows in SCALED:
        for label in ("tiled seed design", "final estimator"):
            picked = [row for row in rows if row["grows"] == grows and row["estimator"] == label]
            sizes = np.log([row["size"] for row in picked])
            times = np.log([row["time"].median for row in picked])
            slopes.append({"grows": grows, "estimator": label,
                           "time_slope": float(np.polyfit(sizes, times, 1)[0])})
    return {"title": "time and peak memory as B, N and the number of probes grow", "problem": problem.as_dict(),
            "factors": list(factors), "rows": rows, "slopes": slopes}


def scaling_figure(section: dict):
    """The scaling section as a log-log figure: time (top) and peak memory (bottom) against size, one
    column per quantity that grows, one line per estimator. Returns the matplotlib figure."""
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    figure, axes = plt.subplots(2, len(SCALED), figsize=(4 * len(SCALED), 6), squeeze=False)
    for column, grows in enumerate(SCALED):
        for label, style in (("tiled seed design", "o--"), ("final estimator", "s-")):
            picked = [row for row in section["rows"] if row["grows"] == grows and row["estimator"] == label]
            sizes = [row["size"] for row in picked]
            axes[0, column].loglog(sizes, [value_of(row["time"]) for row in picked], style, label=label)
            if all(row["peak_bytes"] is not None for row in picked):
                axes[1, column].loglog(sizes, [value_of(row["peak_bytes"]) / 2**20 for row in picked], style,
                                       label=label)
        for ax in axes[:, column]:  # the measured sizes as plain numbers, not matplotlib's crowded minor ticks
            ax.set_xticks(sizes, [str(size) for size in sizes])
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        axes[1, column].set_xlabel(grows if grows != "num_probes" else "P (probes)")
    axes[0, 0].set_ylabel("time (s)")
    axes[1, 0].set_ylabel("peak memory (MiB)")
    axes[0, 0].legend()
    figure.tight_layout()
    return figure


def plot_scaling(section: dict, path: str) -> None:
    """:func:`scaling_figure`, saved as a PNG (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = scaling_figure(section)
    figure.savefig(path, dpi=100)
    plt.close(figure)


SAVED_SCALING = pathlib.Path(__file__).with_name("scaling_measurements.json")


def save_scaling(results: dict, path: pathlib.Path = SAVED_SCALING) -> None:
    """Keep the run's context and its scaling section, for the tiling chapter (``saved_scaling``)."""
    record = to_json(results)
    kept = {key: record[key] for key in ("date", "machine", "versions", "settings")}
    path.write_text(json.dumps({**kept, "scaling": record["sections"]["scaling"]}, indent=1) + "\n")


def saved_scaling(path: pathlib.Path = SAVED_SCALING) -> dict:
    """The scaling section saved by ``hutchinson-benchmark --save-scaling``, with its run's context."""
    return json.loads(path.read_text())


def value_of(measurement) -> float:
    """The median of a Measurement, or of its JSON form."""
    return measurement.median if isinstance(measurement, Measurement) else measurement["median"]


def exact_vs_hutchinson(problem: Problem, dims: tuple[int, ...], *, repeats: int) -> dict:
    """Exact traces (D jvps per point) against the estimator (P jvps per point) for each D in ``dims``."""
    measurements, ratios = {}, []
    for dim in dims:
        sized = dataclasses.replace(problem, D=dim)
        args = sized.inputs()
        exact, estimate = f"exact, D={dim}", f"hutchinson, D={dim}"
        measured, _ = _compile_and_time({exact: (memory_aware.exact_traces, args[:-1]),
                                         estimate: (estimator(MEMORY_AWARE, sized), args)}, repeats=repeats)
        measurements.update(measured)
        ratios += [_ratio(measurements, q, exact, estimate) for q in ("time", "flops")]
    return {"title": "exact traces (jacfwd) against Hutchinson, across D", "problem": problem.as_dict(),
            "measurements": measurements, "ratios": ratios}


def run(*, large: Problem, small: Problem, dims: tuple[int, ...], chunk_size: int, repeats: int,
        peak_repeats: int, scaling_base: Problem, factors: tuple[int, ...] = (1, 2, 4, 8),
        scaling_peak_repeats: int | None = None, machine_sizes: tuple[int, int] = (2048, 2**28),
        report: Callable[[dict], None] = lambda section: None) -> dict:
    """Every section, in order; ``report`` is called with each section as soon as it is measured.

    ``scaling_peak_repeats`` (default ``peak_repeats``) is the number of fresh processes per peak in
    the scaling section, 0 to time it only; ``machine_sizes`` are the roofline's matrix size and
    bytes of its elementwise pass."""
    results = {"date": datetime.date.today().isoformat(), "machine": machine(), "versions": versions(),
               "settings": {"repeats": repeats, "peak_repeats": peak_repeats, "chunk_size": chunk_size},
               "sections": {}}
    sections = {"seed_vs_final": lambda: seed_vs_final(large, repeats=repeats, peak_repeats=peak_repeats,
                                                       chunk_size=chunk_size),
                "strategies": lambda: strategies(large, repeats=repeats),
                "loop_vmap_jit": lambda: loop_vmap_jit(small, repeats=repeats),
                "floor": lambda: floor(large, repeats=repeats),
                "matfree": lambda: matfree_comparison(large, repeats=repeats),
                "exact_vs_hutchinson": lambda: exact_vs_hutchinson(small, dims, repeats=repeats),
                "roofline": lambda: roofline(large, repeats=repeats, machine_sizes=machine_sizes),
                "scaling": lambda: scaling(scaling_base, factors=factors, repeats=repeats,
                                           peak_repeats=peak_repeats if scaling_peak_repeats is None
                                           else scaling_peak_repeats)}
    for name, measure in sections.items():
        results["sections"][name] = measure()
        report(results["sections"][name])
    return results


def machine() -> dict:
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "jax_devices": [str(d) for d in jax.devices()],
            "peak_memory_measured": peak_memory_supported()}


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("jax", "jaxlib", "numpy", "matfree"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


# Output -----------------------------------------------------------------------------------

def to_json(value: Any) -> Any:
    """Results as plain JSON values (Measurements become dicts)."""
    if isinstance(value, Measurement):
        return value.as_dict()
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    return value


def describe(value: Any, quantity: str) -> str:
    if isinstance(value, Measurement):
        spread = _human(value.spread / 2, value.unit)
        return f"{_human(value.median, value.unit)} ± {spread} (median of {value.repeats})"
    return _human(value, "bytes" if quantity.endswith("bytes") else "")


def _human(value: float, unit: str) -> str:
    if unit == "s":
        for name, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
            if value >= scale:
                return f"{value / scale:.3g} {name}"
        return f"{value / 1e-9:.3g} ns"
    if unit == "bytes":
        return f"{value / 2**20:.3g} MiB"
    return f"{value:.3g}"


def print_section(section: dict) -> None:
    print(f"\n== {section['title']}")
    problem = section["problem"]
    print(f"   B={problem['B']} N={problem['N']} Dc={problem['Dc']} D={problem['D']} "
          f"probes={problem['num_probes']} hidden={tuple(problem['hidden_sizes'])}")
    if "attainable" in section:  # the roofline
        for name in ("flops_per_second", "bytes_per_second"):
            print(f"   {name:17s} attainable {describe(section['attainable'][name], name)}, achieved "
                  f"{section['achieved'][name]:.3g}: {100 * section['fractions'][name]:.3g}% of it")
        print(f"   operations per byte {section['operations_per_byte']:.3g} (the machine's: "
              f"{section['machine_operations_per_byte']:.3g}): {section['binding_limit']} binds")
        return
    if "rows" in section:  # the scaling table
        print(f"   {'grows':10s} {'size':>6s}  {'estimator':18s} {'time':>12s} {'peak':>12s}")
        for row in section["rows"]:
            peak = describe(row["peak_bytes"].median, "peak_bytes") if row["peak_bytes"] else "-"
            print(f"   {row['grows']:10s} {row['size']:6d}  {row['estimator']:18s} "
                  f"{_human(row['time'].median, 's'):>12s} {peak:>12s}")
        for slope in section["slopes"]:
            print(f"   slope of log time against log {slope['grows']}, {slope['estimator']}: {slope['time_slope']:.2f}")
        return
    for label, quantities in section["measurements"].items():
        print(f"   {label}:")
        for quantity, value in quantities.items():
            print(f"      {quantity:12s} {describe(value, quantity)}")
    for ratio in section["ratios"]:
        print(f"   {ratio['quantity']:10s} {ratio['numerator']} / {ratio['denominator']} = {ratio['value']:.3g}")
    if "max_abs_difference" in section:
        print(f"   largest difference between their traces: {section['max_abs_difference']:.2g}")


def _sizes(text: str) -> tuple[int, int, int]:
    B, N, Dc = (int(part) for part in text.split(","))
    return B, N, Dc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hutchinson-benchmark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmark.json", help="where to write the results as JSON")
    parser.add_argument("--large", type=_sizes, default=(64, 1000, 512), metavar="B,N,Dc",
                        help="sizes of the seed-against-final, strategies, floor and matfree sections "
                             "(default 64,1000,512)")
    parser.add_argument("--small", type=_sizes, default=(4, 16, 64), metavar="B,N,Dc",
                        help="sizes of the loop and exact-trace sections (default 4,16,64)")
    parser.add_argument("--dims", type=lambda s: tuple(int(d) for d in s.split(",")), default=(2, 8, 32, 128),
                        help="the dimensions D of the exact-trace section (default 2,8,32,128)")
    parser.add_argument("--num-probes", type=int, default=8)
    parser.add_argument("--chunk-size", type=int, default=100, help="points of each batch element per step")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement")
    parser.add_argument("--peak-repeats", type=int, default=3, help="fresh processes per peak memory")
    parser.add_argument("--scaling", type=_sizes, default=(16, 250, 512), metavar="B,N,Dc",
                        help="the sizes the scaling section starts from (default 16,250,512)")
    parser.add_argument("--factors", type=lambda s: tuple(int(f) for f in s.split(",")), default=(1, 2, 4, 8),
                        help="how much B, N and the probes grow in the scaling section (default 1,2,4,8)")
    parser.add_argument("--scaling-peak-repeats", type=int, default=None,
                        help="fresh processes per peak memory in the scaling section (default: --peak-repeats; "
                             "0 times it only)")
    parser.add_argument("--machine-sizes", type=lambda s: tuple(int(v) for v in s.split(",")), default=(2048, 2**28),
                        metavar="MATRIX,BYTES", help="the roofline's matrix size n (an n x n product) and the bytes "
                                                     "of its elementwise pass (default 2048,268435456)")
    parser.add_argument("--plot", help="also draw the scaling section as a log-log figure (PNG) here")
    parser.add_argument("--save-scaling", action="store_true",
                        help=f"also keep the scaling section in the package ({SAVED_SCALING.name}), "
                             "where the tiling chapter reads it")
    parser.add_argument("--peak-child", help=argparse.SUPPRESS)  # internal: one peak measurement
    args = parser.parse_args(argv)
    if args.peak_child:
        print(json.dumps({"peak_bytes": _measure_peak_here(json.loads(args.peak_child))}))
        return 0

    large = Problem(*args.large, num_probes=args.num_probes)
    small = Problem(*args.small, num_probes=args.num_probes)
    print(f"hutchinson-benchmark: jax {jax.__version__} on {platform.platform()}, {os.cpu_count()} CPU cores")
    results = run(large=large, small=small, dims=args.dims, chunk_size=args.chunk_size, repeats=args.repeats,
                  peak_repeats=args.peak_repeats, scaling_base=Problem(*args.scaling, num_probes=args.num_probes),
                  factors=args.factors, scaling_peak_repeats=args.scaling_peak_repeats,
                  machine_sizes=args.machine_sizes, report=print_section)
    if args.plot:
        plot_scaling(results["sections"]["scaling"], args.plot)
        print(f"\ndrew {args.plot}")
    if args.save_scaling:
        save_scaling(results)
        print(f"\nsaved the scaling section in {SAVED_SCALING}")
    with open(args.out, "w") as out:
        json.dump(to_json(results), out, indent=2)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
