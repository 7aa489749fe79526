"""The website builds, and every page renders fully with no network.

The book is built once (module fixture) with warnings as errors, served from 127.0.0.1, and each
page is loaded in Debian's headless Chromium through Playwright. Any request to another host is
aborted and reported, so a CDN script, web font or theme asset that slipped back in fails here.
Notebook pages must carry the Colab button and the download button; widgets saved in a
notebook's outputs must be drawn from their saved state; pages with $ math must show MathJax
output.

Needs /usr/bin/chromium (Debian's package: `apt-get install chromium`, which .ci/run does).
Playwright's own browser download (`playwright install`) is never used.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
import threading
import urllib.request
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOST = "127.0.0.1"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# sphinx-thebe adds its `const THEBE_JS_URL = ...` script twice to every Jupyter Book 1 page;
# the second one throws. Harmless (thebe is off), and the only page error tolerated.
KNOWN_PAGE_ERROR = ("SyntaxError", "Identifier 'THEBE_JS_URL' has already been declared")
TIMEOUT_MS = 30_000


def _toc_docnames() -> list[str]:
    """The documents of _toc.yml, in order, as Sphinx docnames (path without suffix)."""
    from sphinx_external_toc.parsing import parse_toc_yaml

    return list(parse_toc_yaml(REPO / "_toc.yml"))


def _source(docname: str) -> Path:
    for suffix in (".ipynb", ".md", ".rst"):
        if (path := REPO / f"{docname}{suffix}").is_file():
            return path
    raise FileNotFoundError(f"_toc.yml lists {docname!r} but no {docname}.ipynb/.md/.rst exists")


def _markdown_text(source: Path) -> str:
    """The prose of a page: its .md text, or a notebook's markdown cells."""
    if source.suffix == ".ipynb":
        cells = json.loads(source.read_text())["cells"]
        return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return source.read_text()


def _has_dollar_math(source: Path) -> bool:
    text = _markdown_text(source)
    text = re.sub(r"^(```|~~~).*?^\1", "", text, flags=re.M | re.S)  # fenced code
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code
    return re.search(r"\$\$.+?\$\$|\$[^\s$][^$\n]*\$", text, flags=re.S) is not None


def _colab_href(docname: str) -> str:
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    repository = config["repository"]
    org_repo = re.sub(r"^https://github\.com/|\.git$|/$", "", repository["url"])
    path = "/".join(p for p in (repository.get("path_to_book", "").strip("/"), docname) if p)
    branch = repository["branch"]
    return f"https://colab.research.google.com/github/{org_repo}/blob/{branch}/{path}.ipynb"


# Collected at import so that each page is its own test; a missing _toc.yml fails collection.
DOCNAMES = _toc_docnames()


@dataclass
class Site:
    html: Path
    executed: Path  # the build's jupyter_execute folder: the executed notebooks


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install chromium`; "
            ".ci/run does it). Playwright's own browser download is not used."
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def site(tmp_path_factory, chromium) -> Site:  # chromium: fail before the slow build
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    assert jupyter_book.is_file(), f"no {jupyter_book}: run the tests with the course's venv"
    cmd = [str(jupyter_book), "build", str(REPO), "--path-output", str(out),
           "--warningiserror", "--nitpick", "--keep-going"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    output = done.stdout + done.stderr
    problems = [line for line in output.splitlines() if re.search(r"WARNING|ERROR|Error", line)]
    log = "\n".join(problems[:60]) + "\n...\n" + output[-3000:]
    assert done.returncode == 0, f"{' '.join(cmd)} failed ({done.returncode}):\n{log}"
    html = out / "_build" / "html"
    missing = [d for d in DOCNAMES if not (html / f"{d}.html").is_file()]
    assert not missing, f"no page built for these _toc.yml entries: {missing}\n{log}"
    return Site(html=html, executed=out / "_build" / "jupyter_execute")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(_QuietHandler, directory=str(site.html))
    httpd = ThreadingHTTPServer((LOCAL_HOST, 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://{LOCAL_HOST}:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class Visit:
    """What happened while one page loaded."""

    outside: list[str] = field(default_factory=list)  # requests to another host (aborted)
    failed: dict[str, str] = field(default_factory=dict)  # local requests that failed or got >= 400
    errors: list[str] = field(default_factory=list)  # uncaught exceptions and console errors
    # "Failed to load resource" console errors, by URL. Most are failed requests seen above; the
    # browser's own /favicon.ico request (the site sets no favicon) is not the page's.
    unloaded: set[str] = field(default_factory=set)

    def problems(self) -> list[str]:
        seen = set(self.failed) | set(self.outside)
        unseen = {u for u in self.unloaded - seen if urlsplit(u).path != "/favicon.ico"}
        return (
            [f"request outside {LOCAL_HOST}: {u}" for u in self.outside]
            + [f"failed request: {u} ({why})" for u, why in self.failed.items()]
            + [f"resource failed to load: {u}" for u in sorted(unseen)]
            + [f"error: {e}" for e in self.errors]
        )


def _open(browser, url: str):
    """Open url in a fresh context that lets only 127.0.0.1 through; return (page, visit)."""
    visit = Visit()
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)

    def route(route):
        target = urlsplit(route.request.url)
        if target.hostname == LOCAL_HOST or target.scheme in ("blob", "data"):
            route.continue_()
        else:
            visit.outside.append(route.request.url)
            route.abort()

    context.route("**/*", route)
    page = context.new_page()

    def on_failed(request):
        if request.url not in visit.outside:  # those were aborted on purpose
            visit.failed.setdefault(request.url, str(request.failure))

    def on_response(response):
        if response.status >= 400:
            visit.failed[response.url] = f"HTTP {response.status}"

    def on_console(message):
        if message.type != "error":
            return
        if message.text.startswith("Failed to load resource"):
            visit.unloaded.add(message.location.get("url", ""))
        else:
            visit.errors.append(f"console: {message.text} (at {message.location.get('url')})")

    def on_pageerror(error):
        if (error.name, error.message) != KNOWN_PAGE_ERROR:
            visit.errors.append(f"uncaught {error.name}: {error.message}")

    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    page.on("console", on_console)
    page.on("pageerror", on_pageerror)
    page.goto(url, wait_until="load")
    return page, visit


def _settle(page, visit: Visit) -> None:
    """Wait until MathJax (if the page loads it) has typeset, and the network is quiet."""
    failure = page.evaluate(
        """async () => {
            const startup = window.MathJax && window.MathJax.startup;
            if (!startup || !startup.promise) return null;
            try { await startup.promise; return null; } catch (e) { return String(e); }
        }"""
    )
    if failure:
        visit.errors.append(f"MathJax: {failure}")
    page.wait_for_load_state("networkidle")


def _broken_images(page) -> list[str]:
    """Images that did not load (lazy ones, which may not have been asked for yet, aside)."""
    return page.evaluate(
        """() => Array.from(document.images)
            .filter(img => img.getAttribute('src') && img.loading !== 'lazy')
            .filter(img => !(img.complete && img.naturalWidth > 0))
            .map(img => img.src)"""
    )


def _saved_widget_views(site: Site, docname: str) -> int:
    """How many widget views the notebook's outputs hold, as executed by the build."""
    executed = site.executed / f"{docname}.ipynb"
    notebook = json.loads((executed if executed.is_file() else _source(docname)).read_text())
    return sum(
        WIDGET_VIEW in output.get("data", {})
        for cell in notebook["cells"]
        if cell["cell_type"] == "code"
        for output in cell.get("outputs", [])
    )


# For each widget-view script html-manager inserts a div.widget-subarea before it and attaches
# the view's element there: a Lumino widget (class lm-Widget; ipywidgets' own controls also carry
# jupyter-widgets, anywidget views do not). A view counts as drawn when that element is there
# and is visible, taking up room on the page.
_RENDERED_VIEWS = """() => Array.from(
    document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')
).map(script => {
    const area = script.previousElementSibling;
    const widget = area && area.classList.contains('widget-subarea')
        && area.querySelector(':scope > .lm-Widget');
    if (!widget) return null;
    const box = widget.getBoundingClientRect();
    const shown = widget.checkVisibility({opacityProperty: true, visibilityProperty: true});
    return shown && box.width > 0 && box.height > 0 ? widget.className : null;
})"""


@pytest.mark.parametrize("docname", DOCNAMES)
def test_page_renders_offline(docname, site, server, browser):
    source = _source(docname)
    is_notebook = source.suffix == ".ipynb"
    views = _saved_widget_views(site, docname) if is_notebook else 0
    page, visit = _open(browser, f"{server}/{docname}.html")
    try:
        rendered: list = []
        if views:
            try:
                page.wait_for_function(
                    f"() => ({_RENDERED_VIEWS})().filter(Boolean).length >= {views}"
                )
            except Exception:  # noqa: BLE001 - reported below with what did render
                pass
            rendered = page.evaluate(_RENDERED_VIEWS)
        _settle(page, visit)
        math = page.locator("mjx-container").count()
        colab = page.eval_on_selector_all(
            'a[href^="https://colab.research.google.com"]', "links => links.map(a => a.href)"
        )
        downloads = page.eval_on_selector_all(
            "a.btn-download-source-button", "links => links.map(a => a.href)"
        )
        broken = _broken_images(page)
    finally:
        page.context.close()

    problems = visit.problems() + [f"image did not load: {src}" for src in broken]
    assert not problems, f"{docname}.html:\n" + "\n".join(problems)

    if is_notebook:
        expected = _colab_href(docname)
        assert expected in colab, f"{docname}.html: no Colab link to {expected} (found {colab})"
        assert set(colab) == {expected}, f"{docname}.html: stray Colab links {colab}"
        wanted = f"{server}/_sources/{docname}.ipynb"
        assert wanted in downloads, f"{docname}.html: no download button for {wanted} ({downloads})"
        with urllib.request.urlopen(wanted) as response:
            assert json.load(response)["cells"], f"{wanted} is not a notebook"

    if views:
        drawn = [r for r in rendered if r]
        assert len(drawn) >= views, (
            f"{docname}.html: {views} widget views saved in the notebook's outputs, "
            f"{len(drawn)} drawn ({rendered})"
        )

    if _has_dollar_math(source):
        assert math > 0, f"{docname}.html: the source has $ math but MathJax drew no formula"


@pytest.mark.parametrize("page_path", ["index.html", "search.html?q=jax", "genindex.html"])
def test_search_and_index_offline(page_path, site, server, browser):
    assert (site.html / page_path.split("?")[0]).is_file()
    page, visit = _open(browser, f"{server}/{page_path}")
    try:
        if page_path == "index.html":  # Jupyter Book's redirect to the root document
            page.wait_for_url(f"{server}/{DOCNAMES[0]}.html")
            page.wait_for_load_state("load")
        _settle(page, visit)
        if page_path.startswith("search"):
            # searchtools.js fills in the summary once the index has loaded and been searched.
            page.wait_for_function(
                "() => { const s = document.querySelector('p.search-summary');"
                " return s && s.textContent.trim().length > 0; }"
            )
    finally:
        page.context.close()
    assert not visit.problems(), f"{page_path}:\n" + "\n".join(visit.problems())
