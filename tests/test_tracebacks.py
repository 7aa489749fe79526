"""Errors shown in notebooks keep the learner's frames and the course's, without machine paths."""

import re
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from hutchinson_course import tracebacks

ANSI = re.compile(r"\x1b\[[0-9;]*m")

SETUP = "from hutchinson_course import tracebacks\ntracebacks.install()\nassert get_ipython().custom_exceptions == (Exception,)"
JAX_ERROR = """\
import jax, jax.numpy as jnp

def per_point(x):
    return x.reshape(3)

jax.jit(per_point)(jnp.ones(4))"""
COURSE_ERROR = """\
from hutchinson_course.authoring.config import load_config
from hutchinson_course.authoring.setup_cell import setup_cell_source

setup_cell_source(load_config(), devices=0)"""


@pytest.fixture(scope="module")
def shown_errors(tmp_path_factory):
    """The error outputs of the two failing cells, run in a kernel after install()."""
    cells = [nbformat.v4.new_code_cell(source) for source in (SETUP, JAX_ERROR, COURSE_ERROR)]
    for cell in cells[1:]:
        cell.metadata["tags"] = ["raises-exception"]
    notebook = nbformat.v4.new_notebook(cells=cells)
    NotebookClient(notebook, kernel_name="python3", timeout=120,
                   resources={"metadata": {"path": str(tmp_path_factory.mktemp("nb"))}}).execute()
    errors = []
    for cell in cells[1:]:
        (error,) = [o for o in cell.outputs if o.output_type == "error"]
        errors.append((error, ANSI.sub("", "\n".join(error.traceback))))
    return errors


def test_library_frames_and_paths_are_left_out(shown_errors):
    (error, text), _ = shown_errors
    assert error.ename == "TypeError" and "reshape" in error.evalue
    assert "site-packages" not in text and "/jax/_src/" not in text and "interactiveshell" not in text
    assert "Cell In[2], line 6" in text and "per_point" in text, text  # the learner's frames stay
    assert text.rstrip().endswith(f"TypeError: {error.evalue}")


def test_course_frames_stay_with_short_paths(shown_errors):
    _, (error, text) = shown_errors
    assert error.ename == "ValueError" and "positive int" in error.evalue
    assert "hutchinson_course/authoring/setup_cell.py" in text, text
    assert str(tracebacks._PACKAGE_DIR.parent) not in text


def test_install_does_nothing_outside_ipython():
    hook = sys.excepthook
    assert tracebacks.install() is None and sys.excepthook is hook


def test_a_traceback_made_only_of_library_frames_is_kept():
    import json

    try:
        json.loads("{")
    except ValueError as error:
        tb = error.__traceback__
    assert tracebacks.without_library_frames(tb.tb_next) is None  # json's frames only
    kept = tracebacks.without_library_frames(tb)
    assert kept is not None and kept.tb_next is None and kept.tb_frame is tb.tb_frame
