"""The pmap chapter's device view: which batch rows live on which device, padding included.

``placement`` is the rule, in Python: the course's functions (``sharded.pad_batch``, then
``device_blocks`` for pmap or ``shard_batch`` for shard_map and jit with shardings) pad B up to a
multiple of the device count with masked rows and give each device one contiguous block. The tests
compare it with the ``addressable_shards`` of arrays the course's functions place on 8 simulated
devices. ``device_view.js`` mirrors the rule so that the view stays interactive on the static
website (tested against ``placement`` in Chromium); invalid settings are explained in the widget.
"""

from __future__ import annotations

from typing import NamedTuple

import anywidget
import jax
import traitlets

from . import assets

STRATEGIES = ("pmap", "shard_map", "jit")
LIMITS = {"devices": (1, 12), "B": (0, 32)}  # beyond 8 devices and down to B = 0, to show the explanations


class Placement(NamedTuple):
    """Rows [start, stop) of the padded batch on each device. Rows from ``batch_size`` on are padding:
    copies of row 0 with mask 0 (``sharded.pad_batch``)."""

    batch_size: int
    padded_size: int
    blocks: tuple[tuple[int, int], ...]  # one (start, stop) per device, in mesh order

    @property
    def padding(self) -> int:
        return self.padded_size - self.batch_size


def placement(num_devices: int, batch_size: int, available_devices: int) -> Placement:
    """Where the course puts a batch of ``batch_size`` rows on ``num_devices`` devices.

    Raises ValueError, with the explanation the widget shows, when the settings cannot run.
    """
    if batch_size < 1:
        raise ValueError(f"B = {batch_size}: a batch needs at least one element.")
    if num_devices < 1:
        raise ValueError(f"{num_devices} devices: at least one device is needed.")
    if num_devices > available_devices:
        raise ValueError(
            f"Only {available_devices} devices are available, so {num_devices} cannot be used: jax.pmap "
            f"cannot map an axis of {num_devices} over them and jax.make_mesh cannot build a mesh of "
            f"{num_devices}. (XLA's flag --xla_force_host_platform_device_count, set before JAX starts, "
            "decides how many CPU devices are simulated.)")
    rows_per_device = -(-batch_size // num_devices)  # ceil: pad_batch pads to a multiple of the device count
    blocks = tuple((device * rows_per_device, (device + 1) * rows_per_device) for device in range(num_devices))
    return Placement(batch_size, rows_per_device * num_devices, blocks)


def _bounded(name: str, default: int) -> traitlets.Int:
    low, high = LIMITS[name]
    return traitlets.Int(default, min=low, max=high).tag(sync=True)


class DeviceView(anywidget.AnyWidget):
    """Choose the device count, B and the strategy (pmap, shard_map, or jit with shardings); see which
    rows each device holds. ``DeviceView(devices=8, B=13, strategy="shard_map")``."""

    _esm = assets.module("device_view.js")
    _css = assets.stylesheet()

    devices = _bounded("devices", 8)
    B = _bounded("B", 13)
    strategy = traitlets.Enum(STRATEGIES, "pmap").tag(sync=True)
    available_devices = traitlets.Int(read_only=True).tag(sync=True)
    limits = traitlets.Dict(LIMITS, read_only=True).tag(sync=True)

    @traitlets.default("available_devices")
    def _count_devices(self) -> int:
        return jax.device_count()

    def placement(self) -> Placement:
        """The rows on each device for the current settings (ValueError with the explanation if invalid)."""
        return placement(self.devices, self.B, self.available_devices)

    def __repr__(self) -> str:
        return (f"DeviceView(devices={self.devices}, B={self.B}, strategy={self.strategy!r}, "
                f"available_devices={self.available_devices})")
