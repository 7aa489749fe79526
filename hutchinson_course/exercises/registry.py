"""The course's exercise sets, declared once.

A set's name names everything else: its checks (``hutchinson_course.exercises.<name>``, whose
``EXERCISES`` must all carry that name), its grader tests (``hutchinson_course.grading.hidden.<name>``,
each ``test_<exercise id>_...`` of one of its exercises), its source notebook
(``solutions/<name>.ipynb``) and the learner's notebook generated from it (``exercises/<name>.ipynb``),
whose metadata the generator writes from this declaration.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ExerciseSet:
    name: str
    chapter: str  # the chapter notebook it practises, book/<chapter>.ipynb
    devices: int | None = None  # simulated CPU devices its code needs (XLA's flag, set before JAX starts)


SETS: tuple[ExerciseSet, ...] = (
    ExerciseSet("jit", "jit"),
    ExerciseSet("vmap", "vmap"),
    ExerciseSet("pmap", "pmap", devices=8),
    ExerciseSet("multiprocess", "multiprocess"),
    ExerciseSet("grad", "grad"),
    ExerciseSet("stateful_vmap", "stateful_vmap"),
    ExerciseSet("tiling", "tiling"),
    ExerciseSet("capstone", "capstone"),
)
BY_NAME = {s.name: s for s in SETS}


def lookup(name: str) -> ExerciseSet:
    if name not in BY_NAME:
        raise ValueError(f"unknown exercise set {name!r}; the course has {', '.join(BY_NAME)}")
    return BY_NAME[name]
