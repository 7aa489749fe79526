"""The first code cell of every notebook, generated from one template.

In Colab it installs the course package (which brings brainstate) when either is missing,
from the tag or commit set in _config.yml; ``HUTCHINSON_COURSE_SOURCE`` overrides where it
comes from (the tests point it at a locally built wheel). A notebook whose metadata asks for
``hutchinson_course.devices`` also gets that many simulated CPU devices, set before JAX is
imported because XLA reads the flag once, at start-up. Last, it makes IPython show errors with
the frames of the learner's code and the course, not of the libraries
(:mod:`hutchinson_course.tracebacks`). Locally, with everything installed, the cell prints
nothing and installs nothing.

The cell carries the tags in ``SETUP_CELL_TAGS``: on the website its code is folded away, so a
chapter opens with its text, not with installation boilerplate; in Colab it stays the first cell.
"""

from __future__ import annotations

from .config import CourseConfig

SOURCE_VARIABLE = "HUTCHINSON_COURSE_SOURCE"
SETUP_CELL_TAGS = ("hide-input",)

_INSTALL = '''\
# Setup: installs the course package when it is missing (as in Colab); does nothing otherwise.
import importlib.util, os, subprocess, sys

if not (importlib.util.find_spec("hutchinson_course") and importlib.util.find_spec("brainstate")):
    source = os.environ.get("{variable}", "{source}")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", source], check=True)
    importlib.invalidate_caches()'''

_DEVICES = '''
# {devices} simulated CPU devices. XLA reads this flag once, when JAX starts: set it before importing jax.
_flag = "--xla_force_host_platform_device_count={devices}"
if _flag not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()'''

_TRACEBACKS = '''
# Errors show your code's frames, not the libraries' internals (hutchinson_course/tracebacks.py).
from hutchinson_course import tracebacks
tracebacks.install()'''


def setup_cell_source(config: CourseConfig, devices: int | None = None) -> str:
    source = _INSTALL.format(variable=SOURCE_VARIABLE, source=config.install_source)
    if devices is not None:
        if not isinstance(devices, int) or devices < 1:
            raise ValueError(f"devices must be a positive int, found {devices!r}")
        source += _DEVICES.format(devices=devices)
    return source + _TRACEBACKS


def notebook_devices(notebook) -> int | None:
    """The simulated devices a notebook's setup cell asks for: its exercise set's, as declared in the
    registry, or a chapter's own metadata ``hutchinson_course.devices``."""
    course = notebook.metadata.get("hutchinson_course", {})
    if "exercise_set" in course:
        from ..exercises import registry

        return registry.lookup(course["exercise_set"]).devices
    return course.get("devices")
