"""The vmap chapter's shape explorer: the shape and bytes of every argument at every level of a strategy.

The picture is drawn in the browser by ``shape_explorer.js``, whose shape rules (``shapes.js``)
mirror ``per_point.strategy_shapes``; the Python widget only holds the settings. So the widget
stays interactive on the static website, with no kernel. ``labelled_levels`` is the same table in
Python, computed by ``strategy_shapes`` itself; the tests check both against ``jax.eval_shape``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import anywidget
import traitlets

from ..estimators import per_point
from . import assets

# The sliders' ranges: small enough to draw, large enough to show what tiling costs.
LIMITS = {"B": (1, 64), "N": (1, 64), "D": (1, 16), "Dc": (1, 64), "K": (1, 16)}


def item_bytes(argument: str, key_kind: str) -> int:
    """Bytes per element as JAX stores them: float32 x, z, t and traces; a bool mask; a typed key
    (key<fry>) stores two uint32 (8 bytes); a legacy key is two uint32 along a trailing axis (4 each)."""
    if argument == "mask":
        return 1
    if argument == "key":
        return 8 if key_kind == "typed" else 4
    return 4


class Axis(NamedTuple):
    """A labelled axis. Multiplying two gives the flattened axis, as ``strategy_shapes`` does for B * N."""

    name: str
    size: int

    def __mul__(self, other: "Axis") -> "Axis":
        return Axis(f"{self.name}·{other.name}", self.size * other.size)


def labelled_levels(*, B: int, N: int, D: int, Dc: int, K: int | None = None, context_kind: str = "global",
                    strategy: str = "in_axes_none", key_kind: str = "typed") -> list[dict]:
    """``per_point.strategy_shapes`` with every axis labelled: a list of
    ``{"level": name, "shapes": {argument: [[letter, size], ...]}}``, the data the widget draws.

    Fixed-size axes (t's trailing 1, a legacy key's 2) are labelled by their size.
    """
    letters = {name: Axis(name, size) for name, size in (("B", B), ("N", N), ("D", D), ("Dc", Dc), ("K", K))
               if size is not None}
    levels = per_point.strategy_shapes(**letters, context_kind=context_kind, strategy=strategy,
                                       key_kind=key_kind)

    def label(axis):
        return [axis.name, axis.size] if isinstance(axis, Axis) else [str(axis), axis]

    return [{"level": level["level"],
             "shapes": {argument: [label(axis) for axis in shape] for argument, shape in level["shapes"].items()}}
            for level in levels]


def array_bytes(argument: str, axes, key_kind: str) -> int:
    """Bytes of an array whose axes are ``[[letter, size], ...]``."""
    return math.prod(size for _, size in axes) * item_bytes(argument, key_kind)


def logical_bytes(**settings) -> int:
    """What a strategy builds and hands to vmap: the bytes of its "before the (outer) vmap" level.

    ``settings`` as for ``labelled_levels``.
    """
    entering = labelled_levels(**settings)[1]["shapes"]
    return sum(array_bytes(argument, axes, settings.get("key_kind", "typed")) for argument, axes in entering.items())


def _bounded(name: str, default: int) -> traitlets.Int:
    low, high = LIMITS[name]
    return traitlets.Int(default, min=low, max=high).tag(sync=True)


class ShapeExplorer(anywidget.AnyWidget):
    """Pick B, N, D, Dc, the context (global (B, Dc) or structured (B, K, Dc)), the strategy and the
    kind of key; see the shape and bytes of x, z, t, mask and key at every level of the nested vmap.

    ``ShapeExplorer(B=4, N=16, strategy="tile")``; display it as the last expression of a cell.
    """

    _esm = assets.module("shapes.js", "shape_explorer.js")
    _css = assets.stylesheet()

    B = _bounded("B", 2)
    N = _bounded("N", 3)
    D = _bounded("D", 2)
    Dc = _bounded("Dc", 4)
    K = _bounded("K", 5)
    context_kind = traitlets.Enum(per_point.CONTEXT_KINDS, "global").tag(sync=True)
    strategy = traitlets.Enum(per_point.STRATEGIES, "in_axes_none").tag(sync=True)
    key_kind = traitlets.Enum(per_point.KEY_KINDS, "typed").tag(sync=True)
    limits = traitlets.Dict(LIMITS, read_only=True).tag(sync=True)

    def settings(self) -> dict:
        return {"B": self.B, "N": self.N, "D": self.D, "Dc": self.Dc, "K": self.K,
                "context_kind": self.context_kind, "strategy": self.strategy, "key_kind": self.key_kind}

    def levels(self) -> list[dict]:
        """The table the widget shows for its current settings (see ``labelled_levels``)."""
        return labelled_levels(**self.settings())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self.settings().items())
        return f"ShapeExplorer({shown})"
