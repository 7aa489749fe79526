"""The benchmark command: it runs at a tiny size, writes the JSON it documents, and every ratio it
reports is the quotient of the two measurements it names (medians for times and peaks).

Its measurements themselves vary by machine and are not checked here, except where a quantity is
certain: a bigger compiled temporary must show in the measured peak.
"""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from hutchinson_course import benchmark
from hutchinson_course.benchmark import Problem

SECTIONS = ("seed_vs_final", "strategies", "loop_vmap_jit", "floor", "matfree", "exact_vs_hutchinson", "roofline",
            "scaling")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("benchmark")
    out, plot = folder / "results.json", folder / "scaling.png"
    done = subprocess.run([sys.executable, "-m", "hutchinson_course.benchmark", "--out", str(out),
                           "--large", "2,8,8", "--small", "1,3,4", "--dims", "2", "--repeats", "2",
                           "--peak-repeats", "1", "--chunk-size", "3", "--num-probes", "4",
                           "--scaling", "1,4,4", "--factors", "1,2", "--scaling-peak-repeats", "0",
                           "--machine-sizes", "256,16777216", "--plot", str(plot)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert plot.stat().st_size > 10_000  # a drawn figure, not an empty file
    return done.stdout, json.loads(out.read_text())


def value(measurement):
    return measurement["median"] if isinstance(measurement, dict) else measurement


def test_the_json_has_every_section_and_the_run_context(tiny_run):
    _, results = tiny_run
    assert set(results) == {"date", "machine", "versions", "settings", "sections"}
    assert tuple(results["sections"]) == SECTIONS
    assert results["versions"]["jax"] == jax.__version__
    assert results["settings"] == {"repeats": 2, "peak_repeats": 1, "chunk_size": 3}
    assert results["sections"]["seed_vs_final"]["problem"] == {"B": 2, "N": 8, "Dc": 8, "D": 2, "num_probes": 4,
                                                               "hidden_sizes": [32, 32]}


def test_ratios_are_quotients_of_the_measured_medians(tiny_run):
    _, results = tiny_run
    checked = 0
    for section in results["sections"].values():
        for ratio in section.get("ratios", []):
            measurements = section["measurements"]
            top = value(measurements[ratio["numerator"]][ratio["quantity"]])
            bottom = value(measurements[ratio["denominator"]][ratio["quantity"]])
            assert ratio["value"] == pytest.approx(top / bottom, rel=1e-12)
            checked += 1
    assert checked >= 10


def test_times_and_peaks_are_medians_with_their_spread(tiny_run):
    _, results = tiny_run
    for section in results["sections"].values():
        for quantities in section.get("measurements", {}).values():
            time = quantities["time"]
            assert time["unit"] == "s" and time["repeats"] == 2 and time["median"] > 0 and time["spread"] >= 0
    seed_vs_final = results["sections"]["seed_vs_final"]["measurements"]
    if results["machine"]["peak_memory_measured"]:
        for quantities in seed_vs_final.values():
            assert quantities["peak_bytes"]["unit"] == "bytes" and quantities["peak_bytes"]["repeats"] == 1


def test_the_compared_estimators_agree(tiny_run):
    _, results = tiny_run
    assert results["sections"]["seed_vs_final"]["max_abs_difference"] < 1e-4
    floor = results["sections"]["floor"]  # the floor with the estimator's work gives its traces
    assert set(floor["measurements"]) == {"estimator", *benchmark.FLOOR_CONTENDERS}
    assert floor["max_abs_difference"] < 1e-5
    matfree = results["sections"]["matfree"]
    # the same probes through matfree's estimator, both ways
    assert len(matfree["measurements"]) == 3 and matfree["max_abs_difference"] < 1e-4


def test_the_roofline_divides_what_was_achieved_by_what_the_machine_attains(tiny_run):
    _, results = tiny_run
    roofline = results["sections"]["roofline"]
    assert roofline["machine_sizes"] == {"matrix_size": 256, "copy_bytes": 16777216}
    for name in ("flops_per_second", "bytes_per_second"):
        assert roofline["achieved"][name] > 0 and roofline["attainable"][name]["median"] > 0
        assert roofline["fractions"][name] == pytest.approx(
            roofline["achieved"][name] / roofline["attainable"][name]["median"], rel=1e-12)
    assert roofline["achieved"]["flops_per_second"] == pytest.approx(roofline["flops"] / roofline["seconds"])
    intensity, balance = roofline["operations_per_byte"], roofline["machine_operations_per_byte"]
    assert roofline["binding_limit"] == ("memory bandwidth" if intensity < balance else "arithmetic")


def test_scaling_grows_one_quantity_at_a_time_for_both_estimators(tiny_run):
    _, results = tiny_run
    scaling = results["sections"]["scaling"]
    assert scaling["factors"] == [1, 2]
    base = scaling["problem"]
    for grows in ("B", "N", "num_probes"):
        for estimator in ("tiled seed design", "final estimator"):
            rows = [row for row in scaling["rows"] if row["grows"] == grows and row["estimator"] == estimator]
            assert [row["size"] for row in rows] == [base[grows], 2 * base[grows]]
            assert all(row["time"]["median"] > 0 for row in rows)
            assert all(row["peak_bytes"] is None for row in rows)  # --scaling-peak-repeats 0: timed only
    assert len(scaling["slopes"]) == 6


def test_the_printout_names_each_section_and_where_it_wrote(tiny_run):
    stdout, results = tiny_run
    for section in results["sections"].values():
        assert section["title"] in stdout
    assert "wrote " in stdout


def test_entry_buffers_lists_the_top_level_arrays_largest_first():
    compiled = benchmark.compile_program(lambda a: jnp.sort(jnp.tanh(a @ a.T), axis=0) @ a, jnp.ones((64, 8)))
    buffers = benchmark.entry_buffers(compiled)
    assert buffers == sorted(buffers, key=lambda buffer: -buffer["bytes"])
    assert all(buffer["bytes"] == 4 * int(jnp.prod(jnp.array(buffer["shape"]))) for buffer in buffers)
    assert (64, 64) in [buffer["shape"] for buffer in buffers]  # the sorted (64, 64) matrix is held


def test_time_interleaved_gives_one_timing_per_call():
    calls = {"a": (jnp.sin, (jnp.ones(3),)), "b": (jnp.cos, (jnp.ones(3),))}
    timings = benchmark.time_interleaved(calls, repeats=3)
    assert set(timings) == {"a", "b"} and all(t.repeats == 3 and t.median > 0 for t in timings.values())


@pytest.mark.skipif(not benchmark.peak_memory_supported(), reason="needs Linux's /proc/self/clear_refs")
def test_the_measured_peak_follows_the_compiled_temporaries():
    # The seed design's temporaries grow from about 2 MB to about 27 MB between these sizes; the run's
    # peak must grow at least as much (it also holds what library fusions use besides).
    small, large = Problem(8, 100, 64, num_probes=8), Problem(16, 200, 128, num_probes=8)
    temps = [benchmark.compiled_stats(benchmark.compile_program(benchmark.estimator(benchmark.SEED_DESIGN, p),
                                                                *p.inputs()))["temp_bytes"] for p in (small, large)]
    peaks = [benchmark.peak_memory(benchmark.SEED_DESIGN, p).median for p in (small, large)]
    assert peaks[1] - peaks[0] > 0.8 * (temps[1] - temps[0]) > 10 * 2**20


def test_unknown_estimators_are_refused():
    with pytest.raises(ValueError, match="estimator must be one of"):
        benchmark.estimator("tile/stacked", Problem(1, 2, 3))
    with pytest.raises(ValueError, match="only memory_aware takes a chunk_size"):
        benchmark.estimator("tile/split", Problem(1, 2, 3), chunk_size=2)


def test_the_scaling_section_is_saved_for_the_chapter_and_drawn(tiny_run, tmp_path):
    _, results = tiny_run
    saved = tmp_path / "scaling.json"
    benchmark.save_scaling(results, saved)
    record = benchmark.saved_scaling(saved)
    assert record["scaling"] == results["sections"]["scaling"]
    assert record["versions"] == results["versions"] and record["date"] == results["date"]
    figure = benchmark.scaling_figure(record["scaling"])
    assert len(figure.axes) == 2 * len(benchmark.SCALED)


def test_the_committed_scaling_run_has_every_size_for_both_designs():
    rows = benchmark.saved_scaling()["scaling"]["rows"]
    for grows in benchmark.SCALED:
        for design in ("tiled seed design", "final estimator"):
            picked = [r for r in rows if (r["grows"], r["estimator"]) == (grows, design)]
            assert len(picked) >= 4 and all(r["peak_bytes"] is not None for r in picked), (grows, design)
