"""``hutchinson-author``: the authoring tools.

    hutchinson-author generate          exercises/ and solution data from solutions/
    hutchinson-author check             fail if anything generated is out of date
    hutchinson-author setup-cells       rewrite notebooks' first cells from the template
    hutchinson-author package-cells     rewrite chapter cells that show package code from the package
    hutchinson-author execute NB...     re-execute notebooks in place (outputs and widget state)
    hutchinson-author build             all of the above in order, for every notebook
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from .config import REPO_ROOT
from .execute import execute_in_place
from .generate import generate
from .package_cells import sync_package_cells
from .setup_cells import course_notebooks, sync_setup_cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hutchinson-author", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["generate", "check", "setup-cells", "package-cells", "execute", "build"])
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path)
    parser.add_argument("--root", type=pathlib.Path, default=REPO_ROOT)
    args = parser.parse_args(argv)
    root = args.root.resolve()
    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")

    if args.command == "check":
        stale = generate(root, check_only=True)
        for path in stale:
            print(f"out of date: {path.relative_to(root)} (run: hutchinson-author generate)")
        return 1 if stale else 0
    if args.command in ("setup-cells", "build"):
        for path in sync_setup_cells(root, args.notebooks or None):
            print(f"setup cell rewritten: {path}")
    if args.command in ("package-cells", "build"):
        for path in sync_package_cells(root, args.notebooks or None):
            print(f"package cells rewritten: {path}")
    if args.command == "execute" or args.command == "build":
        targets = args.notebooks or [p for p in course_notebooks(root) if p.parent.name != "exercises"]
        for path in targets:
            print(f"executing {path} ...", flush=True)
            execute_in_place(path)
    if args.command in ("generate", "build"):
        for path in generate(root):
            print(f"generated {path.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
