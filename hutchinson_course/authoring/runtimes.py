"""How long each notebook took to run, and with which versions.

Both come from the website build: myst-nb executes every page through jupyter-cache, which
records each notebook's execution time in ``_build/.jupyter_cache``. ``python -m
hutchinson_course.authoring.runtimes`` (``make runtimes``) prints those records; book/runtimes.md shows them with myst-nb's ``nb-exec-table``
directive, beside the ``course-versions`` directive defined here (a Sphinx extension, loaded by
``_config.yml``), which lists the versions the build, and so the executions, ran with.
"""

from __future__ import annotations

import os
import pathlib
import platform
import sys
from dataclasses import dataclass
from importlib import metadata

# What a learner's run time depends on: the interpreter, JAX and the libraries the chapters use.
VERSIONED = ("jax", "jaxlib", "numpy", "brainstate", "matplotlib", "ipywidgets", "myst-nb")
CACHE_DIR = pathlib.Path("_build") / ".jupyter_cache"
RUNTIMES_PAGE = "book/runtimes"


@dataclass(frozen=True)
class Runtime:
    notebook: pathlib.Path
    seconds: float | None  # None when the record carries no time
    executed: str  # when the cached execution was made, "YYYY-MM-DD HH:MM"


def versions() -> list[tuple[str, str]]:
    """(name, version) of the interpreter, the machine and the packages in VERSIONED."""
    rows = [("Python", platform.python_version()),
            ("machine", f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores")]
    for name in VERSIONED:
        try:
            rows.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            rows.append((name, "not installed"))
    return rows


def cached_runtimes(cache_dir: pathlib.Path) -> list[Runtime]:
    """The execution records of a jupyter-cache folder, one per notebook, by path."""
    from jupyter_cache import get_cache

    if not (cache_dir / "global.db").is_file():
        raise FileNotFoundError(f"no jupyter-cache in {cache_dir}: build the website first (make book)")
    cache = get_cache(str(cache_dir))
    records = {}
    for record in sorted(cache.list_cache_records(), key=lambda r: r.created):
        records[record.uri] = Runtime(  # the newest record of a notebook wins
            notebook=pathlib.Path(record.uri),
            seconds=(record.data or {}).get("execution_seconds"),
            executed=record.created.strftime("%Y-%m-%d %H:%M"),
        )
    return sorted(records.values(), key=lambda r: str(r.notebook))


def format_runtimes(runtimes: list[Runtime], root: pathlib.Path) -> str:
    def shown(path: pathlib.Path) -> str:
        return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)

    width = max([len("notebook")] + [len(shown(r.notebook)) for r in runtimes])
    lines = [f"{'notebook':<{width}}  seconds  executed"]
    for r in runtimes:
        seconds = "-" if r.seconds is None else f"{r.seconds:.1f}"
        lines.append(f"{shown(r.notebook):<{width}}  {seconds:>7}  {r.executed}")
    total = sum(r.seconds or 0.0 for r in runtimes)
    lines.append(f"{'total':<{width}}  {total:>7.1f}")
    return "\n".join(lines)


def _setup_versions_directive(app) -> None:
    from docutils import nodes
    from sphinx.util.docutils import SphinxDirective

    class CourseVersions(SphinxDirective):
        """A bullet list of :func:`versions`, as of this build."""

        def run(self):
            items = nodes.bullet_list()
            for name, version in versions():
                paragraph = nodes.paragraph()
                paragraph += nodes.strong(text=name)
                paragraph += nodes.Text(f" {version}")
                items += nodes.list_item("", paragraph)
            return [items]

    app.add_directive("course-versions", CourseVersions)


def setup(app):
    _setup_versions_directive(app)
    # Versions can change between builds while no source changes: always rebuild the page.
    app.connect("env-get-outdated", lambda app, env, added, changed, removed:
                [RUNTIMES_PAGE] if RUNTIMES_PAGE in env.found_docs else [])
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = pathlib.Path(args[0] if args else ".").resolve()
    try:
        runtimes = cached_runtimes(root / CACHE_DIR)
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 1
    print(format_runtimes(runtimes, root))
    print("with " + ", ".join(f"{name} {version}" for name, version in versions()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
