"""The multiprocess exercises' checks: typical mistakes get specific messages (no devices needed)."""

import numpy as np

from hutchinson_course.estimators import core
from hutchinson_course.exercises import exercise_set

import scoring

q1, q2 = exercise_set("multiprocess")


def outcome(exercise, answer):
    return scoring.outcome(exercise, answer)


def test_q1_messages():
    def strided(arrays, process_index, process_count):
        if arrays[0].shape[0] % process_count:
            raise ValueError(f"{arrays[0].shape[0]} rows, {process_count} processes")
        return tuple(a[process_index::process_count] for a in arrays)

    def no_check(arrays, process_index, process_count):
        rows = arrays[0].shape[0] // process_count
        return tuple(a[process_index * rows:(process_index + 1) * rows] for a in arrays)

    def vague(arrays, process_index, process_count):
        if arrays[0].shape[0] % process_count:
            raise ValueError("uneven")
        return no_check(arrays, process_index, process_count)

    def first_array_only(arrays, process_index, process_count):
        return no_check(arrays, process_index, process_count)[0]

    assert "one contiguous block" in outcome(q1, strided).message
    assert "raise ValueError (pad the batch first)" in outcome(q1, no_check).message
    assert "should name both numbers" in outcome(q1, vague).message
    assert "one part per array" in outcome(q1, first_array_only).message
    assert outcome(q1, vague).status == "failed"


class Uneven(Exception):
    pass


class UnevenValue(ValueError):
    pass


def contiguous(error):
    """A q1 answer that raises ``error(message)`` for an uneven split."""
    def process_part(arrays, process_index, process_count):
        if arrays[0].shape[0] % process_count:
            raise error(f"{arrays[0].shape[0]} rows do not split into {process_count} processes")
        rows = arrays[0].shape[0] // process_count
        return tuple(a[process_index * rows:(process_index + 1) * rows] for a in arrays)
    return process_part


def test_q1_the_error_for_an_uneven_split():
    assert outcome(q1, contiguous(ValueError)).passed
    assert outcome(q1, contiguous(UnevenValue)).passed  # a ValueError of the learner's own class
    message = outcome(q1, contiguous(Uneven)).message
    assert "should raise ValueError with a clear message, found Uneven: 10 rows" in message


def right_mean(blocks):
    sums = [core.masked_sum_and_count(traces, mask) for traces, mask in blocks]
    return core.mean_of_real(sum(s for s, _ in sums), sum(c for _, c in sums))


def test_right_answers_pass_every_grader_test():
    for exercise_id, right in (("q1", contiguous(ValueError)), ("q2", right_mean)):
        got, most, scored = scoring.points("multiprocess", exercise_id, right)
        assert got == most, scored


def test_the_grader_tests_catch_what_the_check_does_not():
    def only_x_t_and_mask(arrays, process_index, process_count):
        return contiguous(ValueError)(arrays[:2], process_index, process_count)

    def mutates_its_input(blocks):  # zeroes the caller's traces after using them
        mean = right_mean(blocks)
        for traces, _ in blocks:
            traces[...] = 0.0
        return mean

    assert outcome(q1, only_x_t_and_mask).passed
    tests = {t["name"]: t for t in scoring.points("multiprocess", "q1", only_x_t_and_mask)[2]["tests"]}
    assert tests["test_q1_eight_processes_and_more_arrays"]["status"] == "failed"
    assert "typed keys included" in tests["test_q1_eight_processes_and_more_arrays"]["message"]
    got, most, scored = scoring.points("multiprocess", "q2", mutates_its_input)
    assert got == most, scored


def test_q2_messages():
    def mean_of_means(blocks):
        return np.mean([core.masked_mean(traces, mask) for traces, mask in blocks])

    def padding_counted(blocks):
        return sum(np.sum(traces) for traces, _ in blocks) / sum(mask.size for _, mask in blocks)

    def nan_without_real_points(blocks):
        sums = [core.masked_sum_and_count(traces, mask) for traces, mask in blocks]
        return sum(s for s, _ in sums) / sum(c for _, c in sums)

    assert "add the sums and the counts first" in outcome(q2, mean_of_means).message
    assert "padding included" in outcome(q2, padding_counted).message
    assert "a mean of 0.0" in outcome(q2, nan_without_real_points).message


def test_an_answer_that_is_not_a_function():
    assert "`process_part` should be a function, found int." in outcome(q1, 3).message
    assert "`mean_across_processes` should be a function, found str." in outcome(q2, "0.5").message


def test_q2_an_answer_returning_a_python_float_or_a_list():
    assert outcome(q2, lambda blocks: float(right_mean(blocks))).passed
    assert "should have shape ()" in outcome(q2, lambda blocks: [float(right_mean(blocks))]).message
