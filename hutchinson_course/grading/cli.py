"""``hutchinson-grade``: score submitted exercise notebooks (see ``grading.grader.grade``)."""

from __future__ import annotations

import argparse
import sys

from .grader import CELL_TIMEOUT, MEMORY_LIMIT, TEST_TIMEOUT, TIMEOUT, default_cache_dir, grade
from .report import CSV_NAME, FEEDBACK_DIR, REPORT_NAME
from .submissions import UsageError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hutchinson-grade",
        description="Run each notebook in a fresh kernel, test its answers with the check in the notebook and "
                    "the grader tests, and write <notebook>.json per notebook, "
                    f"{CSV_NAME}, {REPORT_NAME} and {FEEDBACK_DIR}/ to --out. Every notebook gets a row, even "
                    "one that crashes or never finishes; the exit code is 0 unless the command is misused.")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="a notebook, or a folder searched for notebooks however deep (*.ipynb, any case)")
    parser.add_argument("--out", required=True, metavar="DIR", help="where to write the results")
    parser.add_argument("--tests", metavar="FILE",
                        help="the instructor's private test file: functions test_<exercise id>_<what>(answer), "
                             "run after the grader tests; learners never see it")
    parser.add_argument("--jobs", type=int, metavar="N", help="notebooks graded at once (default: all cores)")
    parser.add_argument("--cell-timeout", type=float, default=CELL_TIMEOUT, metavar="S",
                        help="seconds a cell may run before it is interrupted (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, metavar="S",
                        help="seconds a whole notebook may run before it is stopped (default: %(default)s)")
    parser.add_argument("--test-timeout", type=float, default=TEST_TIMEOUT, metavar="S",
                        help="seconds the tests of one exercise may run (default: %(default)s)")
    parser.add_argument("--memory-limit", type=float, default=MEMORY_LIMIT / 2**30, metavar="GB",
                        help="address space per kernel and per judge, in GB; 0 for none (default: %(default)g)")
    parser.add_argument("--set", dest="set_name", metavar="NAME",
                        help="exercise set of notebooks whose metadata does not name one")
    parser.add_argument("--resume", action="store_true",
                        help="keep the results already in --out of notebooks unchanged since, grade the rest")
    sandbox = parser.add_mutually_exclusive_group()
    sandbox.add_argument("--sandbox", dest="sandbox", action="store_true", default=None,
                         help="require the bubblewrap sandbox (default: use it where it works)")
    sandbox.add_argument("--no-sandbox", dest="sandbox", action="store_false",
                         help="run submissions without the sandbox")
    parser.add_argument("--compilation-cache", metavar="DIR", default=None,
                        help=f"JAX's compilation cache, shared by the submissions (default: {default_cache_dir()})")
    args = parser.parse_args(argv)
    try:
        results = grade(args.paths, args.out, tests=args.tests, jobs=args.jobs, cell_timeout=args.cell_timeout,
                        timeout=args.timeout, test_timeout=args.test_timeout, set_name=args.set_name,
                        resume=args.resume, sandbox=args.sandbox,
                        memory_limit=int(args.memory_limit * 2**30) if args.memory_limit else None,
                        cache_dir=args.compilation_cache)
    except UsageError as error:
        parser.error(str(error))
    except KeyboardInterrupt:
        print(f"Interrupted: the notebooks graded so far are in {args.out} (--resume goes on from there)",
              file=sys.stderr)
        return 130
    print(f"Graded {len(results)} notebook(s): {args.out}/{CSV_NAME}, {args.out}/{REPORT_NAME}", file=sys.stderr)
    return 0
