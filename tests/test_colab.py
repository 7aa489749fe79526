"""The Colab path: a notebook alone in an empty folder, in a fresh environment holding only what
Colab preinstalls, runs top to bottom; its setup cell installs the course package (from a locally
built wheel, through HUTCHINSON_COURSE_SOURCE) and with it brainstate.

The notebooks tested are those the website's Colab buttons open: the chapters and the exercise
notebooks. (A solutions notebook is its exercise notebook with the answers filled in, which the
generator test proves, and nbval runs it.) The first notebook starts from Colab's packages alone,
so its setup cell installs brainstate too; before each later one only the course package is
removed again, which keeps the test fast while every setup cell still has to install it.

Each run also counts the programs JAX compiles after the setup cell (JAX's monitoring events,
``hutchinson_course.compilations``) against the notebook's budget, its metadata
``hutchinson_course.compilation_budget`` (an exercise notebook's is copied from its solutions
notebook by the generator). Compiling is most of a chapter's run time on a CPU, so a chapter that
grows slow fails here by its count, whatever the machine's speed.

The environment runs the Python Colab runs, 3.12: $COLAB_PYTHON if set, else python3.12 on PATH or
under pyenv. Without one the test is skipped, and says so."""

import glob
import json
import os
import pathlib
import shutil
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from hutchinson_course.authoring.setup_cell import SOURCE_VARIABLE
from hutchinson_course.authoring.setup_cells import course_notebooks

ROOT = pathlib.Path(__file__).resolve().parents[1]
COLAB_PREINSTALLED = ("jax", "jaxlib", "numpy", "matplotlib", "ipywidgets", "ipykernel")
COLAB_NOTEBOOKS = [p for p in course_notebooks(ROOT) if p.parent.name in ("book", "exercises")]
COLAB_PYTHON_VERSION = (3, 12)


COUNT_START = """\
from hutchinson_course.compilations import count_compilations as _count_compilations
_compilation_count = _count_compilations()
_compilation_count_counting = _compilation_count.__enter__()"""
COUNT_END = """\
_compilation_count.__exit__(None, None, None)
print(__import__("json").dumps(vars(_compilation_count_counting)))"""


def colab_python() -> str | None:
    """An interpreter of Colab's Python version, or None."""
    name = "python{}.{}".format(*COLAB_PYTHON_VERSION)
    candidates = [os.environ.get("COLAB_PYTHON"), shutil.which(name),
                  *sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{name[6:]}*/bin/{name}")))]
    for candidate in filter(None, candidates):
        version = subprocess.run([candidate, "-c", "import sys; print(*sys.version_info[:2])"],
                                 capture_output=True, text=True)
        if version.returncode == 0 and tuple(map(int, version.stdout.split())) == COLAB_PYTHON_VERSION:
            return candidate
    return None


def pinned(names):
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower()] = f"{name}=={version}"
    return [pins[name] for name in names]


def run(*command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """A fresh venv with Colab's preinstalled packages, a kernel spec for it, and a course wheel."""
    interpreter = colab_python()
    if interpreter is None:
        pytest.skip("no Python {}.{} on this machine (Colab's version): set COLAB_PYTHON=/path/to/python3.12"
                    .format(*COLAB_PYTHON_VERSION))
    base = tmp_path_factory.mktemp("colab")
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--wheel-dir", str(base / "wheels"), str(ROOT))
    wheel = next((base / "wheels").glob("hutchinson_course-*.whl"))
    python = base / "venv" / "bin" / "python"
    run(interpreter, "-m", "venv", str(base / "venv"))
    run(str(python), "-m", "pip", "install", "--quiet", *pinned(COLAB_PREINSTALLED))
    assert not installed(python, "brainstate"), "Colab's preinstalled packages should not bring brainstate"
    kernel_dir = base / "jupyter" / "kernels" / "colab"
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "colab-like", "language": "python"}))
    return {"base": base, "python": python, "wheel": wheel}


def installed(python, distribution):
    result = subprocess.run([str(python), "-m", "pip", "show", "--quiet", distribution], capture_output=True)
    return result.returncode == 0


@pytest.mark.parametrize("notebook", COLAB_NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebook_runs_alone_in_a_colab_like_environment(colab, notebook, tmp_path, monkeypatch):
    python = colab["python"]
    if installed(python, "hutchinson-course"):
        run(str(python), "-m", "pip", "uninstall", "--quiet", "--yes", "hutchinson-course")
    assert not installed(python, "hutchinson-course")

    alone = tmp_path / notebook.name
    shutil.copy(notebook, alone)
    nb = nbformat.read(alone, as_version=4)
    monkeypatch.setenv("JUPYTER_PATH", str(colab["base"] / "jupyter"))
    monkeypatch.setenv(SOURCE_VARIABLE, str(colab["wheel"]))
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    # Count what JAX compiles from the first cell after the setup cell (which sets XLA's flags before
    # JAX starts) to the end, through JAX's monitoring events (hutchinson_course.compilations).
    budget = nb.metadata.get("hutchinson_course", {}).get("compilation_budget")
    after_setup = next(i for i, cell in enumerate(nb.cells) if cell.cell_type == "code") + 1
    nb.cells.insert(after_setup, nbformat.v4.new_code_cell(COUNT_START))
    nb.cells.append(nbformat.v4.new_code_cell(COUNT_END))
    # Cells tagged raises-exception may fail (on purpose); any other error fails the test.
    NotebookClient(nb, kernel_name="colab", timeout=600,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    count = json.loads(nb.cells.pop().outputs[0]["text"])
    nb.cells.pop(after_setup)
    assert budget is not None, (
        f"{notebook.name} has no compilation budget: it compiled {count['compilations']} programs; set its "
        "metadata hutchinson_course.compilation_budget (an exercise notebook's comes from its solutions notebook)")
    assert count["compilations"] <= budget, (
        f"{notebook.name} compiled {count['compilations']} programs, over its budget of {budget} (metadata "
        f"hutchinson_course.compilation_budget): a slower chapter, or a budget to raise on purpose")

    assert installed(python, "hutchinson-course") and installed(python, "brainstate")
    assert sorted(p.name for p in tmp_path.iterdir()) == [notebook.name], "the notebook needed other files"
    texts = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    if notebook.parent.name == "exercises":
        assert "not attempted" in texts and "passed" not in texts
    if notebook.parent.name == "solutions":
        assert "not attempted" not in texts and "failed" not in texts
