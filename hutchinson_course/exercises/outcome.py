"""The result of checking one exercise: what the learner sees and what the grader records."""

from __future__ import annotations

import dataclasses
from typing import Literal

Status = Literal["passed", "failed", "error", "not attempted", "timed out"]
STATUSES: tuple[Status, ...] = ("passed", "failed", "error", "not attempted", "timed out")


class Incorrect(AssertionError):
    """Raised by a check when the learner's answer is wrong; its message says why."""


class NotAttempted(Exception):
    """Raised by a check when the answer is still the stub the exercise notebook ships."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    status: Status
    message: str

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, found {self.status!r}")

    @property
    def passed(self) -> bool:
        return self.status == "passed"
