"""The tiling chapter's measurements at the note's sizes, made once and saved for the chapter to read.

    python -m hutchinson_course.tiling_measurements      (rewrites tiling_measurements.json beside this file)

Compiling 24 programs up to (B, N, Dc) = (64, 1000, 512), measuring peak memory in fresh
processes and timing the large programs takes minutes; the chapter only needs the numbers, so it
reads them from ``tiling_measurements.json`` (with the date, machine and versions of the run) and
checks its claims on them, while it compiles and runs the small sizes itself. The measuring
functions are the benchmark command's (``hutchinson_course.benchmark``), so the chapter, this
command and the benchmark measure the same way.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import functools
import json
import os
import pathlib
import platform

import jax
import jaxlib

from .benchmark import Problem, compile_program, compiled_stats, entry_buffers, peak_memory, time_interleaved
from .estimators import memory_aware
from .estimators.core import masked_mean
from .estimators.memory_aware import FIELDS, strategy_traces
from .estimators.per_point import STRATEGIES

PATH = pathlib.Path(__file__).with_name("tiling_measurements.json")
SIZES = [(8, 100, 64), (16, 200, 128), (32, 500, 256), (64, 1000, 512)]  # (B, N, Dc), the note's
PEAK_SIZES = (32, 500, 256)
NO_LIBRARY_FUSIONS = "--xla_cpu_experimental_ynn_fusion_type="
PEAK_RUNS = {  # label: (estimator, sizes, chunk_size, extra XLA flags)
    "split, in_axes=None": ("in_axes_none/split", PEAK_SIZES, None, ""),
    "split, tile": ("tile/split", PEAK_SIZES, None, ""),
    "split, in_axes=None, no YNNPACK": ("in_axes_none/split", PEAK_SIZES, None, NO_LIBRARY_FUSIONS),
    "memory-aware": ("memory_aware", SIZES[-1], None, ""),
    "memory-aware, chunks of 100": ("memory_aware", SIZES[-1], 100, ""),
}
GRADIENT_SETTINGS = {"unchunked": (None, False), "chunks of 50": (50, False), "chunks of 50, checkpoint": (50, True)}


def key(sizes) -> str:
    return "x".join(map(str, sizes))


def strategy_program(sizes, field, strategy, compiler_options=None):
    problem = Problem(*sizes)
    fn = functools.partial(strategy_traces, field=field, strategy=strategy, num_probes=problem.num_probes)
    return compile_program(fn, *problem.inputs(), compiler_options=compiler_options)


def measure() -> dict:
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as background:
        peaks = {label: background.submit(peak_memory, name, Problem(*sizes), chunk, xla_flags=flags)
                 for label, (name, sizes, chunk, flags) in PEAK_RUNS.items()}
        programs = {(sizes, field, strategy): strategy_program(sizes, field, strategy)
                    for sizes in SIZES for field in FIELDS for strategy in STRATEGIES}
        results = {"strategies": {key(sizes): {f"{field}, {strategy}": compiled_stats(programs[sizes, field, strategy])
                                               for field in FIELDS for strategy in STRATEGIES} for sizes in SIZES},
                   "tile_is_a_buffer_of_split_tile": {
                       key(sizes): sizes in [b["shape"] for b in entry_buffers(programs[sizes, "split", "tile"])]
                       for sizes in SIZES}}
        split_program = programs[PEAK_SIZES, "split", "in_axes_none"]
        results["library_fusions"] = sum(b["name"].startswith("ynn_fusion") for b in entry_buffers(split_program))
        no_library = strategy_program(PEAK_SIZES, "split", "in_axes_none",
                                      {NO_LIBRARY_FUSIONS.strip("-").split("=")[0]: ""})
        results["temporaries_at_peak_sizes"] = {
            "split, in_axes=None": compiled_stats(split_program)["temp_bytes"],
            "split, tile": compiled_stats(programs[PEAK_SIZES, "split", "tile"])["temp_bytes"],
            "split, in_axes=None, no YNNPACK": compiled_stats(no_library)["temp_bytes"]}

        small_timings = {}
        for sizes in SIZES[:2]:
            args = Problem(*sizes).inputs()
            timings = time_interleaved({f"{field}, {strategy}": (programs[sizes, field, strategy], args)
                                        for field in FIELDS for strategy in STRATEGIES}, repeats=9)
            small_timings[key(sizes)] = {label: timing.median for label, timing in timings.items()}
        results["median_seconds"] = small_timings

        largest = Problem(*SIZES[-1])
        largest_args = largest.inputs()
        chunked = {chunk: compile_program(functools.partial(memory_aware.batch_traces, num_probes=largest.num_probes,
                                                            chunk_size=chunk), *largest_args) for chunk in (None, 100)}
        chunk_timings = time_interleaved({str(c): (p, largest_args) for c, p in chunked.items()}, repeats=5)
        results["chunks_at_largest"] = {
            str(c): {**compiled_stats(p), "median_seconds": chunk_timings[str(c)].median} for c, p in chunked.items()}

        peak_problem = Problem(*PEAK_SIZES)
        peak_args = peak_problem.inputs()
        gradients = {}
        for label, (chunk, checkpoint) in GRADIENT_SETTINGS.items():
            def loss(p, x_t, z, t, mask, k, chunk=chunk, checkpoint=checkpoint):
                traces = memory_aware.batch_traces(p, x_t, z, t, mask, k, num_probes=peak_problem.num_probes,
                                                   chunk_size=chunk, checkpoint=checkpoint)
                return masked_mean(traces, mask)
            gradients[label] = compiled_stats(compile_program(jax.grad(loss), *peak_args))["temp_bytes"]
        results["gradient_temporaries"] = gradients
        results["peak_bytes"] = {label: (future.result().median if future.result() else None)
                                 for label, future in peaks.items()}
    results["run"] = {"date": datetime.date.today().isoformat(), "machine": f"{platform.machine()}, "
                      f"{os.cpu_count()} CPU cores", "jax": jax.__version__,
                      "jaxlib": jaxlib.__version__,
                      "command": "python -m hutchinson_course.tiling_measurements"}
    return results


def load() -> dict:
    """The saved measurements (see the module's docstring for the command that rewrites them)."""
    return json.loads(PATH.read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=PATH)
    args = parser.parse_args(argv)
    args.out.write_text(json.dumps(measure(), indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
