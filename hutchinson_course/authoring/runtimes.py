"""How long each notebook takes to run top to bottom, measured, and the page that shows it.

``python -m hutchinson_course.authoring.runtimes --measure`` (``make runtimes``) runs every
chapter and exercise notebook as a learner meets it: one after another, each in a fresh kernel,
from its first cell to its last, and writes the seconds with the date, the machine, its load and the
versions to ``book/runtimes.json``; without ``--measure`` it prints that file. The website renders
the file on book/runtimes.md with the ``course-runtimes`` directive (a Sphinx extension, loaded by
``_config.yml``). The website build itself executes nothing: it shows the committed outputs, which
nbval checks against a fresh run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import sys
import time
from dataclasses import dataclass
from importlib import metadata

# What a learner's run time depends on: the interpreter, JAX and the libraries the chapters use.
VERSIONED = ("jax", "jaxlib", "numpy", "brainstate", "diffrax", "optax", "matplotlib", "ipywidgets")
RUNTIMES_FILE = pathlib.Path("book") / "runtimes.json"
MEASURED_DIRS = ("book", "exercises")  # what a learner opens: chapters and exercise sets as handed out
LIMIT_SECONDS = 30.0  # every notebook, top to bottom from a fresh kernel, on two idle cores


@dataclass(frozen=True)
class Runtime:
    notebook: str  # path from the repository root
    seconds: float
    load_before: float  # the machine's 1-minute load average when the run started


def versions() -> dict[str, str]:
    """The interpreter, the machine and the packages in VERSIONED, by name."""
    rows = {"Python": platform.python_version(),
            "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores"}
    for name in VERSIONED:
        try:
            rows[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            rows[name] = "not installed"
    return rows


def measured_notebooks(root: pathlib.Path) -> list[pathlib.Path]:
    from .setup_cells import course_notebooks

    return [p for p in course_notebooks(root) if p.parent.name in MEASURED_DIRS]


def time_notebook(path: pathlib.Path, timeout: int = 300) -> float:
    """Seconds to run the notebook top to bottom in a fresh kernel, kernel start included."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()  # the notebook in memory only: the committed file is not touched
    return time.perf_counter() - start


def measure(root: pathlib.Path, progress=print) -> dict:
    runtimes = []
    for path in measured_notebooks(root):
        load = os.getloadavg()[0]
        seconds = time_notebook(path)
        runtimes.append(Runtime(str(path.resolve().relative_to(root)), round(seconds, 1), round(load, 2)))
        progress(f"{runtimes[-1].notebook}: {seconds:.1f} s")
    return {"measured": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "versions": versions(),
            "notebooks": [vars(r) for r in runtimes]}


def load(root: pathlib.Path) -> dict:
    path = root / RUNTIMES_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {path}: measure the notebooks first (make runtimes)")
    return json.loads(path.read_text())


def format_runtimes(record: dict) -> str:
    rows = record["notebooks"]
    width = max([len("notebook")] + [len(r["notebook"]) for r in rows])
    lines = [f"{'notebook':<{width}}  seconds  load at start"]
    lines += [f"{r['notebook']:<{width}}  {r['seconds']:>7.1f}  {r['load_before']:>11.2f}" for r in rows]
    lines.append(f"{'total':<{width}}  {sum(r['seconds'] for r in rows):>7.1f}")
    lines.append(f"measured {record['measured']} with "
                 + ", ".join(f"{name} {version}" for name, version in record["versions"].items()))
    return "\n".join(lines)


def _table(header: list[str], rows: list[list[str]]):
    from docutils import nodes

    table = nodes.table()
    group = nodes.tgroup(cols=len(header))
    table += group
    group += [nodes.colspec(colwidth=1) for _ in header]

    def row(cells):
        line = nodes.row()
        for text in cells:
            entry = nodes.entry()
            entry += nodes.paragraph(text=text)
            line += entry
        return line

    head = nodes.thead()
    head += row(header)
    body = nodes.tbody()
    for cells in rows:
        body += row(cells)
    group += [head, body]
    return table


def _setup_runtimes_directive(app) -> None:
    from docutils import nodes
    from sphinx.util.docutils import SphinxDirective

    class CourseRuntimes(SphinxDirective):
        """The table of book/runtimes.json, then when and with what it was measured."""

        def run(self):
            root = pathlib.Path(self.env.srcdir)
            self.env.note_dependency(str(root / RUNTIMES_FILE))
            record = load(root)
            rows = [[r["notebook"], f"{r['seconds']:.1f}", f"{r['load_before']:.2f}"] for r in record["notebooks"]]
            rows.append(["total", f"{sum(r['seconds'] for r in record['notebooks']):.1f}", ""])
            table = _table(["notebook", "seconds", "one-minute load at start"], rows)
            when = nodes.paragraph(text=f"Measured {record['measured']}, with:")
            items = nodes.bullet_list()
            for name, version in record["versions"].items():
                paragraph = nodes.paragraph()
                paragraph += nodes.strong(text=name)
                paragraph += nodes.Text(f" {version}")
                items += nodes.list_item("", paragraph)
            return [table, when, items]

    app.add_directive("course-runtimes", CourseRuntimes)


def setup(app):
    _setup_runtimes_directive(app)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", nargs="?", default=".", type=pathlib.Path)
    parser.add_argument("--measure", action="store_true",
                        help=f"run every notebook and write {RUNTIMES_FILE} before printing it")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if args.measure:
        record = measure(root, progress=lambda line: print(line, flush=True))
        (root / RUNTIMES_FILE).write_text(json.dumps(record, indent=1) + "\n")
    try:
        record = load(root)
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 1
    print(format_runtimes(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
