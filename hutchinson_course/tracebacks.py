"""Tracebacks a learner can read: the error and the frames of their own code.

The chapters raise errors on purpose (a shape that does not fit, a traced value used as a
Python bool, ...). IPython's traceback of such an error runs through many frames inside
libraries, each printed with the absolute path of the machine that ran it. :func:`install`,
called by every notebook's setup cell, makes IPython leave out frames of installed libraries,
the standard library and IPython itself, keep those of the notebook's cells and of this course
package, and print the package's files relative to where it is installed
(``hutchinson_course/estimators/explicit.py``). The exception type and message are unchanged,
and JAX's own traceback filtering (``JAX_TRACEBACK_FILTERING``) still applies on top.
"""

from __future__ import annotations

import os
import pathlib
import site
import sys
import sysconfig
import types

_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
_PACKAGE_PARENT = str(_PACKAGE_DIR.parent) + os.sep
_LIBRARY_MODULES = ("IPython.", "ipykernel.", "traitlets.", "tornado.", "asyncio.")


def _library_dirs() -> tuple[str, ...]:
    dirs = set(site.getsitepackages()) | {site.getusersitepackages()}
    paths = sysconfig.get_paths()
    dirs |= {paths["stdlib"], paths["platstdlib"], paths["purelib"], paths["platlib"]}
    return tuple(sorted(str(pathlib.Path(d).resolve()) + os.sep for d in dirs if d))


_LIBRARY_DIRS = _library_dirs()


def is_library_frame(frame: types.FrameType) -> bool:
    """Whether a frame belongs to an installed library (anything but cells and this package)."""
    filename = frame.f_code.co_filename
    if filename.startswith("<frozen"):
        return True
    if filename.startswith("<"):  # "<string>", "<stdin>": code the learner ran
        return False
    path = os.path.realpath(filename)
    if path.startswith(str(_PACKAGE_DIR) + os.sep):
        return False
    if str(frame.f_globals.get("__name__", "")).startswith(_LIBRARY_MODULES):
        return True
    return (path.startswith(_LIBRARY_DIRS)
            or f"{os.sep}site-packages{os.sep}" in path or f"{os.sep}dist-packages{os.sep}" in path)


def without_library_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """The traceback with library frames left out; unchanged if nothing else would be left."""
    kept = []
    while tb is not None:
        if not is_library_frame(tb.tb_frame):
            kept.append(tb)
        tb = tb.tb_next
    if not kept:
        return None
    filtered = None
    for entry in reversed(kept):
        filtered = types.TracebackType(filtered, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return filtered


def _chain(error: BaseException):
    """The error and the exceptions it was raised from or during, each once."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ if error.__cause__ is not None else (
            None if error.__suppress_context__ else error.__context__)


def shorten_paths(text: str) -> str:
    """This package's files relative to where it is installed."""
    return text.replace(_PACKAGE_PARENT, "")


def _show_filtered(shell, etype, value, tb, tb_offset=None):
    for error in _chain(value):
        if error is not value:  # the errors it was raised from, which IPython prints first
            error.__traceback__ = without_library_frames(error.__traceback__)
    shown = without_library_frames(tb) or tb
    structured = shell.InteractiveTB.structured_traceback(etype, value, shown, tb_offset=0)
    shell._showtraceback(etype, value, [shorten_paths(line) for line in structured])


def install(shell=None) -> None:
    """Show exceptions in this IPython session with library frames left out.

    Does nothing outside IPython (a plain ``python`` run keeps its tracebacks). Returns nothing, so
    that the setup cell that calls it shows no output.
    """
    if shell is None:
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        shell.set_custom_exc((Exception,), _show_filtered)
