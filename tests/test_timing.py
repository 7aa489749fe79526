"""time_call measures the work, not the dispatch, and leaves compilation out."""

import time

import pytest

from hutchinson_course.timing import Timing, speedup, time_call


class SlowResult:
    """Stands for an array whose computation takes ``seconds`` to finish after dispatch."""

    def __init__(self, seconds):
        self.seconds = seconds

    def block_until_ready(self):
        time.sleep(self.seconds)
        return self


def test_waits_for_the_result_and_skips_the_warmup():
    calls = []

    def dispatch():
        calls.append(None)
        if len(calls) == 1:
            time.sleep(0.3)  # the first call compiles
        return SlowResult(0.02)

    timing = time_call(dispatch, repeats=3)
    assert len(calls) == 4
    assert 0.015 < timing.median < 0.2


def test_speedup_and_text():
    assert speedup(Timing(0.2, 0.0, 3), Timing(0.05, 0.0, 3)) == pytest.approx(4.0)
    assert str(Timing(0.0021, 0.0002, 5)) == "2.1 ms ± 100 µs (median of 5)"


def test_bad_counts_are_explained():
    with pytest.raises(ValueError, match="repeats >= 1"):
        time_call(lambda: None, repeats=0)
