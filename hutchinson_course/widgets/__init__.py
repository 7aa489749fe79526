"""Widgets for the chapters. Each works live in Jupyter and Colab and, from its saved state, on the
static website. Their logic is in Python and tested; where a widget stays interactive on the website
without a kernel, its ES module mirrors that logic (tested against Python and JAX in Chromium) or
draws data computed in Python beforehand.

- ``ShapeExplorer`` (vmap chapter): shapes and bytes at every level of the three strategies.
- ``DeviceView`` (pmap chapter): which batch rows, padding included, live on which device.
- ``MemoryExplorer`` (tiling chapter): logical bytes beside the compiled memory JAX reports.
- ``ProbeExplorer`` (grad chapter): the spread of Hutchinson estimates of tr(A), and its theory.
"""

from .device_view import DeviceView
from .memory_explorer import MemoryExplorer
from .probe_explorer import ProbeExplorer
from .shape_explorer import ShapeExplorer

__all__ = ["DeviceView", "MemoryExplorer", "ProbeExplorer", "ShapeExplorer"]
