"""Sets of 2-D points made in code: rings, ellipses and two moons, each set with its context.

A set's context z (Dc,) says what it is: a one-hot of its shape (3) followed by its two shape
parameters, so a conditional flow can learn one distribution per context. Sets hold different
numbers of points; they are padded to the largest with zeros and a mask marks the real points,
the (B, N) layout the course has used from its first chapter. Drawn with NumPy: the data is an
input to the flow, not part of what JAX compiles.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

SHAPES = ("ring", "ellipse", "moons")
CONTEXT_DIM = len(SHAPES) + 2  # one-hot of the shape, then its two parameters
NOISE = 0.05  # standard deviation of the noise around each curve


class PointSets(NamedTuple):
    """x: (B, N, 2) points, zero where padding; z: (B, Dc) contexts; mask: (B, N), True for real points."""
    x: np.ndarray
    z: np.ndarray
    mask: np.ndarray


def shape_points(shape: str, first: float, second: float, num_points: int, rng: np.random.Generator) -> np.ndarray:
    """num_points points of one set: (num_points, 2).

    ring: radius ``first``, centre shifted along x by ``second``; ellipse: semi-axes ``first`` and
    ``second``; moons: two interleaved half circles of radius ``first``, pulled apart by ``second``.
    """
    angle = rng.uniform(0.0, 2.0 * np.pi, num_points)
    if shape == "ring":
        points = np.stack([first * np.cos(angle) + second, first * np.sin(angle)], axis=1)
    elif shape == "ellipse":
        points = np.stack([first * np.cos(angle), second * np.sin(angle)], axis=1)
    elif shape == "moons":
        half = angle / 2.0  # in [0, pi): one half circle
        lower = rng.random(num_points) < 0.5  # which moon
        x = np.where(lower, first - first * np.cos(half), first * np.cos(half)) - first / 2.0
        y = np.where(lower, -first * np.sin(half) + second / 2.0, first * np.sin(half) - second / 2.0)
        points = np.stack([x, y], axis=1)
    else:
        raise ValueError(f"shape must be one of {SHAPES}, found {shape!r}")
    return points + NOISE * rng.normal(size=points.shape)


def context(shape: str, first: float, second: float) -> np.ndarray:
    """z: (Dc,) = one-hot of the shape, then its two parameters."""
    one_hot = np.eye(len(SHAPES))[SHAPES.index(shape)]
    return np.concatenate([one_hot, [first, second]])


def point_sets(seed: int, num_sets: int, max_points: int, min_points: int | None = None) -> PointSets:
    """``num_sets`` sets of 2-D points of random shapes, parameters and sizes, padded to ``max_points``.

    Each set has between ``min_points`` (default max_points // 2) and ``max_points`` points.
    Returns PointSets with x: (B, N, 2), z: (B, Dc), mask: (B, N) as float32 / bool arrays, B =
    num_sets, N = max_points, Dc = ``CONTEXT_DIM``. The same seed gives the same sets.
    """
    min_points = max_points // 2 if min_points is None else min_points
    if not 1 <= min_points <= max_points:
        raise ValueError(f"need 1 <= min_points <= max_points, found {min_points} and {max_points}")
    rng = np.random.default_rng(seed)
    x = np.zeros((num_sets, max_points, 2), np.float32)
    z = np.zeros((num_sets, CONTEXT_DIM), np.float32)
    mask = np.zeros((num_sets, max_points), bool)
    for b in range(num_sets):
        shape = SHAPES[rng.integers(len(SHAPES))]
        first, second = rng.uniform(0.6, 1.4), rng.uniform(0.3, 1.0)
        size = rng.integers(min_points, max_points + 1)
        x[b, :size] = shape_points(shape, first, second, size, rng)
        z[b] = context(shape, first, second)
        mask[b, :size] = True
    return PointSets(x, z, mask)
