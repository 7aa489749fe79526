"""`make runtimes`: every chapter and exercise notebook timed top to bottom in a fresh kernel; the
committed measurement (book/runtimes.json, shown on the site's run-time page) covers every one of
them and keeps each under the course's limit."""

import json
import time
from pathlib import Path

import nbformat
import pytest

from hutchinson_course.authoring import runtimes

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def record():
    return runtimes.load(REPO)


def test_the_measurement_covers_every_chapter_and_exercise_notebook(record):
    measured = [row["notebook"] for row in record["notebooks"]]
    expected = [str(p.relative_to(REPO)) for p in runtimes.measured_notebooks(REPO)]
    assert sorted(measured) == sorted(expected), "re-measure with `make runtimes`"


def test_every_notebook_ran_within_the_limit(record):
    over = {row["notebook"]: row["seconds"] for row in record["notebooks"]
            if row["seconds"] >= runtimes.LIMIT_SECONDS}
    assert not over, f"over {runtimes.LIMIT_SECONDS:.0f} s: {over}"
    assert record["versions"]["jax"] == runtimes.versions()["jax"], "measured with another JAX: re-measure"


def test_measuring_runs_each_notebook_in_a_fresh_kernel_and_leaves_it_as_it_was(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import time, os\nstarted = time.time()\ntime.sleep(1.5)"),
        nbformat.v4.new_code_cell("assert 'leftover' not in globals()\nleftover = 1")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for name in ("book/a.ipynb", "exercises/b.ipynb", "solutions/b.ipynb"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        nbformat.write(notebook, tmp_path / name)
    before = (tmp_path / "book/a.ipynb").read_bytes()

    start = time.perf_counter()
    assert runtimes.main([str(tmp_path), "--measure"]) == 0
    elapsed = time.perf_counter() - start

    record = json.loads((tmp_path / runtimes.RUNTIMES_FILE).read_text())
    rows = {row["notebook"]: row["seconds"] for row in record["notebooks"]}
    assert list(rows) == ["book/a.ipynb", "exercises/b.ipynb"]  # solutions are not what learners open
    assert all(1.5 <= seconds <= elapsed for seconds in rows.values())  # the second kernel is fresh too
    assert (tmp_path / "book/a.ipynb").read_bytes() == before
    table = runtimes.format_runtimes(record)
    assert "book/a.ipynb" in table and f"{rows['book/a.ipynb']:7.1f}" in table


def test_printing_without_a_measurement_says_what_to_run(tmp_path, capsys):
    assert runtimes.main([str(tmp_path)]) == 1
    assert "make runtimes" in capsys.readouterr().err
