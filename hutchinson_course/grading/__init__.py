"""The grader: score finished exercise notebooks with the grader tests, in a sandbox.

``grade`` (and the ``hutchinson-grade`` command, ``grading.cli``) is in ``grading.grader``. This
package's own import stays light, because the learner's kernel imports ``grading.collect`` and each
judge ``grading.judge``: neither needs nbformat or nbclient.
"""

from __future__ import annotations

import sys

# jsonschema (under nbformat) builds rfc3987_syntax's grammar when it is imported, which takes
# seconds in every process that reads a notebook, for the "iri" string format that no notebook
# schema uses; jsonschema skips that format when the module cannot be imported.
sys.modules.setdefault("rfc3987_syntax", None)


def __getattr__(name: str):
    if name in ("grade", "UsageError", "CELL_TIMEOUT", "TIMEOUT", "TEST_TIMEOUT", "MEMORY_LIMIT"):
        from . import grader
        return getattr(grader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["UsageError", "grade"]
