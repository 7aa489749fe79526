"""The widgets' front end: ES modules and one stylesheet, shipped as files beside this module.

Each widget's ``_esm`` is ``common.js`` followed by the files it needs, joined into one module
(anywidget loads a widget's code as a single ES module, from the widget's state, so the website
needs no server and no CDN to run it).
"""

from __future__ import annotations

import functools
import pathlib

HERE = pathlib.Path(__file__).parent


@functools.cache
def read(name: str) -> str:
    return (HERE / name).read_text(encoding="utf-8")


def module(*names: str) -> str:
    """One ES module: common.js, then ``names`` in order."""
    return "\n".join(read(name) for name in ("common.js", *names))


def stylesheet() -> str:
    return read("widgets.css")
