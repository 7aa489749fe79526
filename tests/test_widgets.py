"""The course widgets: their rules checked against JAX, their views driven in a browser.

In Python: the shape explorer's table is what ``jax.eval_shape`` sees inside the real mapped
estimator; the device view's placement is where the course's functions put rows on 8 simulated
devices; compiled memory is computed once per setting; the probe explorer's spread is what theory
says.

In headless Chromium (Playwright; the browser fixtures of test_site.py, no site build): each
widget's ES module, exactly as its saved state carries it, is imported into a blank page. Its
browser-side rules are evaluated over the same grids and compared with JAX and Python, and each view
is drawn with a stand-in for anywidget's model (get, set, on, off, save_changes) and driven from the
keyboard.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import json
import math
import pathlib
from contextlib import contextmanager

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import traitlets
from test_site import browser, chromium  # noqa: F401 - fixtures, reused
from vmap_spy import recording_vmap_levels

from hutchinson_course.compilations import count_compilations
from hutchinson_course.estimators import per_point, sharded
from hutchinson_course.estimators.variance import probe_variance
from hutchinson_course.widgets import DeviceView, MemoryExplorer, ProbeExplorer, ShapeExplorer
from hutchinson_course.widgets.device_view import placement
from hutchinson_course.widgets.memory_explorer import compiled_memory
from hutchinson_course.widgets.probe_explorer import PROBE_COUNTS, probe_histograms
from hutchinson_course.widgets.shape_explorer import array_bytes, labelled_levels, logical_bytes

# ---------------------------------------------------------------------------------------------
# What JAX sees


SIZES = [  # (B, N, D, Dc, K): distinct sizes, so that a swapped or mislabelled axis cannot pass
    (2, 3, 2, 4, 5),
    (1, 4, 3, 2, 3),
    (3, 2, 5, 6, 1),
]
SETTINGS = [
    {"B": B, "N": N, "D": D, "Dc": Dc, "K": K, "context_kind": context, "strategy": strategy, "key_kind": keys}
    for (B, N, D, Dc, K), context, strategy, keys in itertools.product(
        SIZES, per_point.CONTEXT_KINDS, per_point.STRATEGIES, per_point.KEY_KINDS)
]


def settings_id(settings: dict) -> str:
    return "-".join(str(value) for value in settings.values())


def described(array) -> tuple[tuple[int, ...], int]:
    """(shape, bytes) of an array, tracer or ShapeDtypeStruct, from JAX's own shape and dtype."""
    return tuple(array.shape), math.prod(array.shape) * array.dtype.itemsize


@functools.cache
def _observed(frozen_settings: tuple) -> tuple:
    settings = dict(frozen_settings)
    B, N, D, Dc, K = (settings[name] for name in ("B", "N", "D", "Dc", "K"))
    context = (Dc,) if settings["context_kind"] == "global" else (K, Dc)
    x_t = jax.ShapeDtypeStruct((B, N, D), jnp.float32)
    z = jax.ShapeDtypeStruct((B, *context), jnp.float32)
    t = jax.ShapeDtypeStruct((B, 1), jnp.float32)
    mask = jax.ShapeDtypeStruct((B, N), jnp.bool_)
    key = jax.random.key(0) if settings["key_kind"] == "typed" else jax.random.PRNGKey(0)
    keys = jax.eval_shape(lambda k: jax.random.split(k, (B, N)), key)
    inputs = {name: described(a) for name, a in zip(per_point.ARGUMENTS, (x_t, z, t, mask, keys))}

    estimator = functools.partial(per_point.batch_traces.__wrapped__, num_probes=2,
                                  strategy=settings["strategy"])
    # The levels: what each vmap over the five per-point arguments sees while JAX traces the estimator.
    with recording_vmap_levels(described) as records:
        output = {"traces": described(jax.eval_shape(estimator, x_t, z, t, mask, key))}
    kinds = [kind for kind, _ in records]
    if settings["strategy"] == "flatten":
        assert kinds == ["entering", "inside", "result"]
        return (inputs, records[0][1], records[1][1], records[2][1], output)
    assert kinds == ["entering", "inside", "entering", "inside", "result", "result"]
    return (inputs, records[0][1], records[1][1], records[3][1], output)


def observed_levels(settings: dict) -> list[dict]:
    """{argument: (shape, bytes)} at each level, as JAX traces the real mapped estimator."""
    return list(_observed(tuple(settings.items())))


def sizes_and_bytes(levels, key_kind) -> list[dict]:
    """Labelled levels (Python's or the browser's) in the form of ``observed_levels``."""
    return [{argument: (tuple(size for _, size in axes), array_bytes(argument, axes, key_kind))
             for argument, axes in level["shapes"].items()} for level in levels]


# ---------------------------------------------------------------------------------------------
# Shape explorer


@pytest.mark.parametrize("settings", SETTINGS, ids=settings_id)
def test_shape_table_is_what_jax_sees(settings):
    levels = labelled_levels(**settings)
    assert [level["level"] for level in levels] == [
        level["level"] for level in per_point.strategy_shapes(**settings)]
    assert sizes_and_bytes(levels, settings["key_kind"]) == observed_levels(settings)
    # Each axis is labelled by the letter whose size it has (the sizes are distinct).
    for level in levels:
        for axes in level["shapes"].values():
            for name, size in axes:
                expected = math.prod(settings[letter] for letter in name.split("·")) if name[0].isalpha() else int(name)
                assert size == expected, (level["level"], name, size)


def test_shape_explorer_holds_settings_within_its_sliders():
    explorer = ShapeExplorer(B=4, N=16, strategy="tile", context_kind="structured")
    assert explorer.levels() == labelled_levels(**explorer.settings())
    assert repr(explorer).startswith("ShapeExplorer(B=4, N=16, D=2, Dc=4, K=5, context_kind='structured'")
    with pytest.raises(traitlets.TraitError):
        ShapeExplorer(B=0)
    with pytest.raises(traitlets.TraitError):
        ShapeExplorer(strategy="loop")


# ---------------------------------------------------------------------------------------------
# Device view

PLACEMENTS = [(8, 16), (8, 13), (3, 7), (1, 5), (8, 3), (5, 5)]  # (devices, B), even and padded


def held_rows(rows: jax.Array, mask: jax.Array) -> dict[int, list]:
    """Device id -> the rows it holds, "pad" for a masked one, from the arrays' addressable shards."""
    masks = {shard.device.id: np.asarray(shard.data).reshape(-1) for shard in mask.addressable_shards}
    held = {}
    for shard in rows.addressable_shards:
        values = np.asarray(shard.data).reshape(-1)
        held[shard.device.id] = [int(v) if real else "pad" for v, real in zip(values, masks[shard.device.id])]
    return held


def expected_rows(layout, device_ids) -> dict[int, list]:
    return {device_id: [row if row < layout.batch_size else "pad" for row in range(start, stop)]
            for device_id, (start, stop) in zip(device_ids, layout.blocks)}


@pytest.mark.parametrize("num_devices, batch_size", PLACEMENTS)
def test_placement_is_where_the_course_puts_the_rows(num_devices, batch_size):
    layout = placement(num_devices, batch_size, jax.device_count())
    rows = jnp.arange(batch_size)  # each row holds its own index
    (padded_rows,), padded_mask, _ = sharded.pad_batch((rows,), jnp.ones((batch_size, 1), bool), num_devices)
    padded_mask = padded_mask[:, 0]
    assert layout.padded_size == padded_rows.shape[0]
    assert np.all(np.asarray(padded_rows)[batch_size:] == 0), "padding rows are copies of row 0"

    # shard_map and jit with shardings: both place their inputs with shard_batch.
    mesh = sharded.batch_mesh(num_devices)
    placed = sharded.shard_batch((padded_rows, padded_mask), mesh)
    assert held_rows(*placed) == expected_rows(layout, [d.id for d in mesh.devices.flat])

    # pmap: device_blocks, then the leading axis mapped over the devices.
    devices = jax.devices()[:num_devices]
    blocks = [sharded.device_blocks(a, num_devices) for a in (padded_rows, padded_mask)]
    mapped = jax.pmap(lambda r, m: (r, m), devices=devices)(*blocks)
    assert held_rows(*mapped) == expected_rows(layout, [d.id for d in devices])


def test_invalid_device_settings_are_explained_not_raised_by_the_widget():
    with pytest.raises(ValueError, match=r"B = 0: a batch needs at least one element"):
        placement(8, 0, 8)
    with pytest.raises(ValueError, match="at least one device is needed"):
        placement(0, 4, 8)
    with pytest.raises(ValueError, match=r"Only 8 devices are available, so 9 cannot be used"):
        placement(9, 4, 8)
    # The explanation's claims, checked: neither pmap nor a mesh takes more devices than there are.
    with pytest.raises(ValueError, match=r"Number of devices 8 must be >= the product of mesh_shape \(9,\)"):
        jax.make_mesh((9,), ("devices",))
    with pytest.raises(ValueError, match="partitioned 8 times, but the dimension size is 9"):
        jax.pmap(lambda a: a)(jnp.ones((9, 1)))
    view = DeviceView(devices=12, B=0)  # settings the sliders allow: the view explains them
    assert view.available_devices == jax.device_count() == 8
    with pytest.raises(ValueError, match="B = 0"):
        view.placement()


# ---------------------------------------------------------------------------------------------
# Memory explorer


def test_compiled_memory_is_computed_once_per_setting():
    with count_compilations() as first:
        memory = compiled_memory("tile", 1, 4, 1)
    with count_compilations() as again:
        assert compiled_memory("tile", 1, 4, 1) == memory
    assert first.compilations >= 1
    assert again.compilations == 0 and again.traces == 0


def test_compiled_arguments_leave_out_x_t():
    # The widget's footnote: the field's Jacobian does not depend on x, so jit drops x_t. The
    # arguments are z, t, mask and the one typed key (8 bytes) that the estimator splits inside.
    B, N, Dc = 2, 16, 4
    inputs = labelled_levels(B=B, N=N, D=4, Dc=Dc)[0]["shapes"]
    z_t_mask = sum(array_bytes(argument, inputs[argument], "typed") for argument in ("z", "t", "mask"))
    assert compiled_memory("in_axes_none", B, N, Dc).arguments == z_t_mask + 8


def test_moving_the_memory_sliders_back_compiles_nothing():
    explorer = MemoryExplorer(B=1, N=4, Dc=1)
    assert set(explorer.compiled) == {"1,4,1"}
    assert set(explorer.compiled["1,4,1"]) == set(per_point.STRATEGIES)
    with count_compilations() as moved:
        explorer.set_state({"N": 16})  # what a message from the browser's slider does
    assert moved.compilations >= len(per_point.STRATEGIES) and set(explorer.compiled) == {"1,4,1", "1,16,1"}
    with count_compilations() as back:
        explorer.N = 4
        explorer.N = 16
    assert back.compilations == 0
    with pytest.raises(traitlets.TraitError, match="N must be one of"):
        explorer.N = 5


# ---------------------------------------------------------------------------------------------
# Probe explorer

MATRIX = np.array([[2.0, 1.0, 0.0, -0.5], [0.3, 1.5, 0.2, 0.0], [0.0, -0.4, 3.0, 0.6], [0.1, 0.0, 0.5, -1.0]])
REPETITIONS = 2000  # every probe test draws this many estimates from a (4, 4) matrix: one compilation per kind


@pytest.fixture(scope="module")
def histograms():
    return probe_histograms(MATRIX, repetitions=REPETITIONS, seed=0)


@pytest.mark.parametrize("kind", ["rademacher", "gaussian"])
def test_probe_estimates_spread_as_theory_says(histograms, kind):
    exact = np.trace(MATRIX)
    assert histograms["exact"] == pytest.approx(exact)
    for m in PROBE_COUNTS:
        entry = histograms["kinds"][kind]["counts"][str(m)]
        assert sum(entry["counts"]) + entry["below"] + entry["above"] == REPETITIONS
        theory = np.sqrt(probe_variance(MATRIX, kind) / m)
        assert entry["theory_std"] == pytest.approx(theory)
        # The mean of R independent estimates has standard deviation theory / sqrt(R): 5 of those.
        assert abs(entry["mean"] - exact) < 5 * theory / np.sqrt(REPETITIONS)
        # The sample standard deviation of R estimates has a relative standard error of about
        # sqrt((kurtosis - 1) / (4 R)). A quadratic form in Gaussians has kurtosis at most 15 (one
        # dominant eigenvalue), and averaging m probes only lowers it: 5 standard errors < 0.21.
        assert entry["std"] == pytest.approx(theory, rel=0.21)


def test_exact_probes_have_no_spread():
    # Rademacher probes give eps^T A eps = tr(A) exactly when A is diagonal: theory and draws agree on 0.
    data = probe_histograms(np.diag([1.0, 2.0, 3.0, -0.5]), repetitions=REPETITIONS, seed=1)
    for entry in data["kinds"]["rademacher"]["counts"].values():
        assert entry["theory_std"] == 0.0 and entry["std"] < 1e-5
        assert entry["below"] == entry["above"] == 0 and max(entry["counts"]) == REPETITIONS


def test_probe_explorer_takes_any_square_matrix():
    jacobian = jax.jacfwd(lambda x: jnp.tanh(jnp.asarray(MATRIX, jnp.float32) @ x))(jnp.ones(4) * 0.1)
    explorer = ProbeExplorer(jacobian, label="J", repetitions=REPETITIONS)
    assert explorer.data["exact"] == pytest.approx(float(jnp.trace(jacobian)), rel=1e-6)
    assert repr(explorer) == "ProbeExplorer(J, probe_kind='rademacher', num_probes=1)"
    with pytest.raises(ValueError, match=r"square \(D, D\) matrix, found shape \(2, 3\)"):
        ProbeExplorer(np.ones((2, 3)))
    with pytest.raises(traitlets.TraitError, match="num_probes must be one of"):
        explorer.num_probes = 3


# ---------------------------------------------------------------------------------------------
# Saved in the notebooks

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def test_notebooks_carry_the_current_front_end():
    # Executing a notebook saves each widget's ES module and stylesheet in its metadata, which is
    # what a viewer without a kernel draws. After a change to the widgets' .js or .css, re-execute
    # the notebooks that show them (hutchinson-author execute ...); a fresh website build executes them again.
    root = pathlib.Path(__file__).resolve().parents[1]
    stale = set()
    for path in sorted(root.glob("*/*.ipynb")):
        metadata = json.loads(path.read_text())["metadata"]
        for model in metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {}).values():
            state = model["state"]
            module, _, name = state.get("_anywidget_id", "").rpartition(".")
            if module.startswith("hutchinson_course.widgets"):
                widget = getattr(importlib.import_module(module), name)
                if (state["_esm"], state["_css"]) != (widget._esm, widget._css):
                    stale.add(str(path.relative_to(root)))
    assert not stale, f"re-execute these notebooks: {sorted(stale)}"


# ---------------------------------------------------------------------------------------------
# In the browser

_IMPORT = """async (esm) => {
    const url = URL.createObjectURL(new Blob([esm], {type: "text/javascript"}));
    window.widgetModule = await import(url);
    return Object.keys(window.widgetModule);
}"""

# anywidget's model as a view sees it: set() fires "change:NAME" when the value changes.
_MOUNT = """async ({state, dark}) => {
    if (dark) document.documentElement.dataset.theme = "dark";
    const style = document.createElement("style");
    style.textContent = state._css;
    document.head.append(style);
    const listeners = {};
    window.saved = 0;
    window.model = {
        get: (name) => state[name],
        set(name, value) {
            if (JSON.stringify(state[name]) === JSON.stringify(value)) return;
            state[name] = value;
            for (const listener of listeners[`change:${name}`] || []) listener();
        },
        save_changes() { window.saved += 1; },
        on(event, listener) { (listeners[event] ||= []).push(listener); },
        off(event, listener) { listeners[event] = (listeners[event] || []).filter((l) => l !== listener); },
        send() {},
    };
    const el = document.createElement("div");
    el.id = "widget";
    document.body.append(el);
    await window.widgetModule.default.render({model: window.model, el});
}"""


@contextmanager
def blank_page(browser, esm: str):  # noqa: F811 - the fixture's value
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    try:
        page.set_content("<!doctype html><html lang='en'><head><title>widget</title></head><body></body></html>")
        page.evaluate(_IMPORT, esm)
        yield page
        assert not errors, errors
    finally:
        page.close()


@contextmanager
def mounted(browser, widget, dark=False):  # noqa: F811
    state = widget.get_state()
    with blank_page(browser, state["_esm"]) as page:
        page.evaluate(_MOUNT, {"state": state, "dark": dark})
        yield page


def test_shape_rules_in_the_browser_are_what_jax_sees(browser):  # noqa: F811
    with blank_page(browser, ShapeExplorer().get_state()["_esm"]) as page:
        browser_levels = page.evaluate(
            "(grid) => grid.map((settings) => window.widgetModule.strategyShapes(settings))", SETTINGS)
        browser_bytes = page.evaluate(
            """(grid) => grid.map((settings) => window.widgetModule.strategyShapes(settings).map(
                   ({shapes}) => Object.fromEntries(Object.entries(shapes).map(([argument, axes]) =>
                       [argument, window.widgetModule.arrayBytes(argument, axes, settings.key_kind)]))))""",
            SETTINGS)
    for settings, levels, level_bytes in zip(SETTINGS, browser_levels, browser_bytes):
        assert levels == labelled_levels(**settings), settings  # names, letters and sizes
        observed = observed_levels(settings)
        assert [{argument: tuple(size for _, size in axes) for argument, axes in level["shapes"].items()}
                for level in levels] == [{argument: shape for argument, (shape, _) in level.items()}
                                         for level in observed], settings
        assert level_bytes == [{argument: size for argument, (_, size) in level.items()}
                               for level in observed], settings


def test_device_placement_in_the_browser_matches_python(browser):  # noqa: F811
    grid = [(devices, batch, 8) for devices in range(0, 13) for batch in range(0, 20)]
    with blank_page(browser, DeviceView().get_state()["_esm"]) as page:
        results = page.evaluate("(grid) => grid.map((args) => window.widgetModule.placement(...args))", grid)
    for (devices, batch, available), result in zip(grid, results):
        try:
            expected = placement(devices, batch, available)
        except ValueError as error:
            assert result == {"error": str(error)}
        else:
            assert result == {"batch_size": expected.batch_size, "padded_size": expected.padded_size,
                              "blocks": [list(block) for block in expected.blocks]}


def test_logical_bytes_in_the_browser_match_python(browser):  # noqa: F811
    explorer = MemoryExplorer(B=1, N=4, Dc=1)
    with blank_page(browser, explorer.get_state()["_esm"]) as page:
        results = page.evaluate("(grid) => grid.map((s) => window.widgetModule.logicalBytes(s))", SETTINGS)
    assert results == [logical_bytes(**settings) for settings in SETTINGS]


def cell_shapes(page) -> dict:
    """(level, argument) -> sizes, read from the drawn table."""
    cells = page.eval_on_selector_all(
        "td[data-argument]",
        "cells => cells.map(c => [c.dataset.level, c.dataset.argument, c.dataset.shape, c.dataset.axes])")
    return {(level, argument): ([int(s) for s in shape.split(",") if s], axes.split(",") if axes else [])
            for level, argument, shape, axes in cells}


def table_of(levels) -> dict:
    return {(level["level"], argument): ([size for _, size in axes], [name for name, _ in axes])
            for level in levels for argument, axes in level["shapes"].items()}


def test_shape_explorer_view_follows_the_keyboard(browser):  # noqa: F811
    explorer = ShapeExplorer(B=2, N=3, strategy="in_axes_none")
    with mounted(browser, explorer) as page:
        assert cell_shapes(page) == table_of(explorer.levels())
        slider = page.get_by_role("slider", name="B", exact=True)
        slider.focus()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        strategy = page.get_by_label("strategy", exact=True)
        strategy.focus()
        page.keyboard.press("ArrowDown")  # in_axes_none -> flatten
        state = page.evaluate("() => ({B: model.get('B'), strategy: model.get('strategy')})")
        assert state == {"B": 4, "strategy": "flatten"}
        assert page.evaluate("() => window.saved") == 3
        after = labelled_levels(**{**explorer.settings(), **state})
        assert cell_shapes(page) == table_of(after)
        assert page.locator('td[data-level="before the vmap"][data-argument="z"]').get_attribute("data-shape") == "12,4"
        # The K slider only matters for a structured context.
        assert page.get_by_role("slider", name="K", exact=True).is_disabled()
        # Focus is visible: the focused control has an outline.
        outline = strategy.evaluate("e => [getComputedStyle(e).outlineStyle, parseFloat(getComputedStyle(e).outlineWidth)]")
        assert outline[0] != "none" and outline[1] >= 2


def test_device_view_explains_invalid_settings_in_the_view(browser):  # noqa: F811
    view = DeviceView(devices=8, B=13, strategy="shard_map")
    with mounted(browser, view) as page:
        drawn = page.eval_on_selector_all(
            "[data-device]", "ds => ds.map(d => Array.from(d.querySelectorAll('[data-row]'), "
            "r => r.dataset.padding === 'true' ? 'pad' : Number(r.dataset.row)))")
        assert drawn == list(expected_rows(view.placement(), range(8)).values())
        devices = page.get_by_role("slider", name="devices", exact=True)
        devices.focus()
        page.keyboard.press("ArrowRight")  # 9 devices, one more than there are
        with pytest.raises(ValueError) as error:
            placement(9, 13, 8)
        assert page.locator(".hc-message").inner_text() == str(error.value)
        page.keyboard.press("ArrowLeft")
        page.get_by_role("slider", name="B", exact=True).fill("0")
        assert page.locator(".hc-message").inner_text().startswith("B = 0: a batch needs at least one element.")


def test_memory_explorer_view_shows_what_was_compiled(browser):  # noqa: F811
    explorer = MemoryExplorer(B=1, N=4, Dc=1)
    with mounted(browser, explorer) as page:
        for strategy in per_point.STRATEGIES:
            row = page.locator(f'tr[data-strategy="{strategy}"]')
            settings = {"B": 1, "N": 4, "D": 4, "Dc": 1, "strategy": strategy}
            assert row.locator('[data-field="logical"]').get_attribute("data-bytes") == str(logical_bytes(**settings))
            temporaries = row.locator('[data-field="temporaries"]').get_attribute("data-bytes")
            assert temporaries == str(compiled_memory(strategy, 1, 4, 1).temporaries)
        slider = page.get_by_role("slider", name="Dc", exact=True)
        slider.focus()
        page.keyboard.press("ArrowRight")  # Dc 1 -> 4: not compiled, no kernel to ask
        assert page.evaluate("() => model.get('Dc')") == 4
        assert page.locator(".hc-pending").count() == 3 * len(per_point.STRATEGIES)
        assert "only these settings have them: B = 1, N = 4, Dc = 1" in page.locator(".hc-note").inner_text()
        logical = page.locator('tr[data-strategy="tile"] [data-field="logical"]').get_attribute("data-bytes")
        assert logical == str(logical_bytes(B=1, N=4, D=4, Dc=4, strategy="tile"))


def test_probe_explorer_view_draws_the_python_histograms(browser, histograms):  # noqa: F811
    explorer = ProbeExplorer(MATRIX, repetitions=REPETITIONS, num_probes=4)
    with mounted(browser, explorer) as page:
        page.get_by_label("probe kind").focus()
        page.keyboard.press("ArrowDown")  # rademacher -> gaussian
        page.get_by_role("slider", name="number of probes", exact=True).focus()
        page.keyboard.press("ArrowRight")  # 4 -> 8
        svg = page.locator("svg.hc-histogram")
        assert (svg.get_attribute("data-kind"), svg.get_attribute("data-num-probes")) == ("gaussian", "8")
        bars = page.eval_on_selector_all("svg rect[data-count]", "rs => rs.map(r => Number(r.dataset.count))")
        assert bars == histograms["kinds"]["gaussian"]["counts"]["8"]["counts"]
        exact = float(page.locator("line[data-exact]").get_attribute("data-exact"))
        assert exact == pytest.approx(np.trace(MATRIX))
        assert len(page.locator("line[data-theory]").all()) == 2


@pytest.mark.parametrize("make_widget", [ShapeExplorer, DeviceView], ids=["shape explorer", "device view"])
def test_dark_theme_gives_dark_native_controls(browser, make_widget):  # noqa: F811
    with mounted(browser, make_widget(), dark=True) as page:
        scheme = page.eval_on_selector(".hc-widget select", "s => getComputedStyle(s).colorScheme")
        assert scheme == "dark"


# Each host marks its dark theme its own way (the website: html[data-theme]; JupyterLab:
# body[data-jp-theme-light]; Colab: html[theme], in its output frames too); a host that marks none
# leaves it to the reader's system setting. The host also gives the page its colours, which the
# widgets' text and lines take (currentColor), so axe-core finds them legible on either.
HOST_THEMES = {
    "website": ("document.documentElement.dataset.theme = '{theme}'", True),
    "JupyterLab": ("document.body.dataset.jpThemeLight = '{theme}' === 'light' ? 'true' : 'false'", True),
    "Colab": ("document.documentElement.setAttribute('theme', '{theme}')", True),
    "unmarked host": ("", False),
}
HOST_COLOURS = {"light": ("#ffffff", "#1f1f1f"), "dark": ("#1e1e1e", "#e3e3e3")}


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("host", list(HOST_THEMES))
@pytest.mark.parametrize("make_widget", [ShapeExplorer, DeviceView, ProbeExplorer],
                         ids=["shape explorer", "device view", "probe explorer"])
def test_widgets_follow_each_hosts_theme(browser, make_widget, host, theme):  # noqa: F811
    from test_site import AXE

    mark, marked = HOST_THEMES[host]
    widget = make_widget(MATRIX, repetitions=REPETITIONS) if make_widget is ProbeExplorer else make_widget()
    # The system setting says the opposite of a marked host's theme: the host's mark must win.
    system = theme if not marked else ("dark" if theme == "light" else "light")
    with mounted(browser, widget) as page:
        page.emulate_media(color_scheme=system)
        background, text = HOST_COLOURS[theme]
        page.evaluate(f"() => {{ {mark.format(theme=theme)}; document.body.style.background = '{background}';"
                      f" document.body.style.color = '{text}'; }}")
        schemes = page.eval_on_selector_all(".hc-widget select", "ss => ss.map(s => getComputedStyle(s).colorScheme)")
        page.add_script_tag(path=str(AXE))
        violations = page.evaluate(
            """async () => (await axe.run({include: [['.hc-widget']]}, {resultTypes: ['violations']}))
                .violations.map(v => `${v.impact} ${v.id}: ` + v.nodes.map(n => n.target.join(' ')).join(', '))""")
    assert schemes and all((scheme == "dark") == (theme == "dark") for scheme in schemes), (host, theme, schemes)
    assert not violations, f"{host}, {theme} theme:\n" + "\n".join(violations)
