"""Re-execute notebooks in place, so their committed outputs are what today's code prints.

Widget state is saved in the notebook, which is what lets the static website draw widgets
without a kernel. No timing metadata is recorded, so an unchanged notebook diffs clean.
"""

from __future__ import annotations

import pathlib

import nbformat
from nbclient import NotebookClient


def execute_in_place(path: pathlib.Path, timeout: int = 300) -> None:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        store_widget_state=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    nbformat.write(notebook, path)
