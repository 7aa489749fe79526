"""``hutchinson-grade``: score submitted exercise notebooks (see ``grade``)."""

from __future__ import annotations

import argparse
import sys

from . import CELL_TIMEOUT, TEST_TIMEOUT, TIMEOUT, grade
from .report import CSV_NAME
from .submissions import UsageError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hutchinson-grade",
        description="Run each notebook in a fresh kernel, test its answers with hidden tests, and write "
                    f"<stem>.json per notebook and {CSV_NAME} to --out. Every notebook gets a row, even "
                    "one that crashes or never finishes; the exit code is 0 unless the command is misused.")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="a notebook, or a folder of *.ipynb")
    parser.add_argument("--out", required=True, metavar="DIR", help="where to write the results")
    parser.add_argument("--tests", metavar="FILE",
                        help="a private test file: functions test_<exercise id>_<what>(answer) run "
                             "after the hidden tests")
    parser.add_argument("--jobs", type=int, metavar="N", help="notebooks graded at once (default: all cores)")
    parser.add_argument("--cell-timeout", type=float, default=CELL_TIMEOUT, metavar="S",
                        help="seconds a cell may run before it is interrupted (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, metavar="S",
                        help="seconds a whole notebook may run before it is stopped (default: %(default)s)")
    parser.add_argument("--test-timeout", type=float, default=TEST_TIMEOUT, metavar="S",
                        help="seconds the tests of one exercise may run (default: %(default)s)")
    parser.add_argument("--set", dest="set_name", metavar="NAME",
                        help="exercise set of notebooks whose metadata does not name one")
    args = parser.parse_args(argv)
    try:
        results = grade(args.paths, args.out, tests=args.tests, jobs=args.jobs, cell_timeout=args.cell_timeout,
                        timeout=args.timeout, test_timeout=args.test_timeout, set_name=args.set_name)
    except UsageError as error:
        parser.error(str(error))
    except KeyboardInterrupt:
        print(f"Interrupted: the notebooks graded so far are in {args.out}", file=sys.stderr)
        return 130
    print(f"Graded {len(results)} notebook(s): {args.out}/{CSV_NAME}", file=sys.stderr)
    return 0
