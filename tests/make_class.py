"""Write a class of N mixed submissions for timing the grader:

    .venv/bin/python tests/make_class.py OUT_DIR N
    .venv/bin/hutchinson-grade OUT_DIR --out grades/ --jobs 2 --cell-timeout 20

One folder per learner, as a learning platform exports them. In turn: the solutions of every
exercise set, the unsolved notebook of every set, and, from the jit notebooks, a wrong answer,
an answer that raises, a top-level loop that the cell time limit interrupts, and a malformed file.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nbformat  # noqa: E402

import grader_notebooks as nbs  # noqa: E402
from hutchinson_course.exercises import EXERCISE_SETS  # noqa: E402


def kinds():
    for name in EXERCISE_SETS:
        yield f"solved_{name}", nbformat.read(nbs.ROOT / "solutions" / f"{name}.ipynb", as_version=4)
        yield f"unsolved_{name}", nbformat.read(nbs.ROOT / "exercises" / f"{name}.ipynb", as_version=4)
    yield "wrong_jit", nbs.redefine(nbs.solutions(), "power_sum_jit", 'power_sum_jit = jax.jit(lambda x, n: x * n)')
    yield "crashing_jit", nbs.redefine(nbs.solutions(), "time_jax_call",
                                       "def time_jax_call(fn, *args, repeats=5):\n    return 1 / 0\n")
    yield "looping_jit", nbs.insert_after_setup(nbs.solutions(), "while True:\n    pass\n")
    yield "malformed_jit", None


def write_class(out: Path, count: int) -> None:
    cycle = list(kinds())
    for k in range(count):
        kind, notebook = cycle[k % len(cycle)]
        path = out / f"learner_{k:03d}" / f"{kind}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        if notebook is None:
            path.write_text('{"cells": [', encoding="utf-8")
        else:
            nbformat.write(notebook, path)


if __name__ == "__main__":
    write_class(Path(sys.argv[1]), int(sys.argv[2]))
