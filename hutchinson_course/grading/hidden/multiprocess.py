"""Hidden tests of the multiprocess exercises."""

from __future__ import annotations

import jax
import numpy as np

from hutchinson_course.grading.hidden import check_test_names
from hutchinson_course.exercises.expect import expect_close
from hutchinson_course.exercises.multiprocess import check_parts, fresh, numbered_batch, process_blocks, reference_mean
from hutchinson_course.exercises.observe import observe
from hutchinson_course.exercises.outcome import Incorrect


def _count_and_keys_shape(parts):
    """How many parts an answer returned, and the shape of the third (the keys') when there are three."""
    return len(parts), (tuple(parts[2].shape) if len(parts) == 3 else None)


def test_q1_eight_processes_and_more_arrays(process_part):
    x_t, mask = numbered_batch(batch_size=16)
    check_parts(process_part, (x_t, mask), 8)
    keys = jax.random.split(jax.random.key(0), (16, 3))
    count, keys_shape = observe(lambda: _count_and_keys_shape(process_part(fresh((x_t, mask, keys)), 3, 8)))
    if count != 3 or keys_shape != (2, 3):
        raise Incorrect("process_part should return one part per array, typed keys included: (16, 3) keys on 8 "
                        "processes give (2, 3) per process.")


def test_q1_parts_put_back_together(process_part):
    x_t, mask = numbered_batch(batch_size=6)
    rows = [observe(lambda: process_part(fresh((x_t, mask)), i, 3)[0]) for i in range(3)]
    expect_close(np.concatenate(rows), x_t, what="the three processes' rows put back together")


def test_q2_one_process_and_a_process_of_padding(mean_across_processes):
    blocks = process_blocks(seed=5, process_count=1, padding_rows=0)
    found = observe(lambda: np.asarray(mean_across_processes(fresh(blocks))))
    expect_close(float(np.asarray(found)), reference_mean(blocks), rtol=1e-5,
                 what="mean_across_processes with a single process holding the whole batch")
    blocks = process_blocks(seed=6, process_count=4, padding_rows=4)  # process 3 holds only padding
    found = observe(lambda: np.asarray(mean_across_processes(fresh(blocks))))
    expect_close(float(np.asarray(found)), reference_mean(blocks),
                 what="the mean when the last process holds only padding", rtol=1e-5,
                 why="A process without real points adds 0 to both the sum and the count.")


check_test_names(__name__)  # every test above belongs to an exercise of this set
