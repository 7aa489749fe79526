"""Vendor the JavaScript the website needs, from pinned npm packages, into ``assets/vendor/``.

The built site must render with no network: widgets are drawn from their saved state by
@jupyter-widgets/html-manager (loaded through require.js, with anywidget for ES-module widgets),
and formulas by MathJax 3. Sphinx, myst-nb and the theme would fetch these from CDNs; the
``sphinx:`` section of ``_config.yml`` points them at the copies written here instead.

Only what a page loads is kept (plus each package's licence): no ``node_modules``. Each package
tarball is fetched with ``npm pack`` and checked against its pinned sha512 integrity, so the
result is the same byte for byte on every run. ``require.min.js`` is minified by the r.js
optimizer shipped in the same requirejs package (the npm package has no minified copy), which is
why ``node`` is needed as well as ``npm``.

Run it with ``make vendor`` or ``python -m hutchinson_course.authoring.vendor [ROOT]``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

VENDOR_DIR = Path("assets") / "vendor"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str  # the registry's sha512 of the tarball
    licence: str
    folder: str  # under assets/vendor/
    why: str


# The versions: html-manager 1.0.15 is the release made with ipywidgets 8.1.9 /
# jupyterlab-widgets 3.0.17 (it depends on @jupyter-widgets/base ^6.0.12 and controls ^5.0.13,
# like jupyterlab-manager 5.0.16 in jupyterlab-widgets 3.0.17). anywidget 0.11.0 matches the pip
# anywidget 0.11.0. MathJax 3.2.2 is the last MathJax 3 (Sphinx's mathjax extension speaks v3).
HTML_MANAGER = Package(
    "@jupyter-widgets/html-manager",
    "1.0.15",
    "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
    "BSD-3-Clause",
    "html-manager",
    "draws ipywidgets from the widget state saved in a page (embed-amd.js)",
)
REQUIREJS = Package(
    "requirejs",
    "2.3.8",
    "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
    "MIT",
    "requirejs",
    "the AMD loader html-manager needs (require.min.js)",
)
ANYWIDGET = Package(
    "anywidget",
    "0.11.0",
    "sha512-LHZgW2j5UjyerZSZcO+BtZPXGMSORQV2bUT480hOR5x/BXS8sOradi/71amJfMueSEnKX0dqPwTfsOGHTsyZpQ==",
    "MIT",
    "anywidget",
    "front end of anywidget's ES-module widgets (index.js, an AMD module)",
)
MATHJAX = Package(
    "mathjax",
    "3.2.2",
    "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
    "Apache-2.0",
    "mathjax",
    "renders $...$ math (tex-chtml.js and its woff-v2 fonts)",
)
# Not loaded by any page: tests/test_site.py injects it to check every page's accessibility,
# so the test needs no network. Kept here so that its pin and integrity live with the others.
AXE_CORE = Package(
    "axe-core",
    "4.14.1",
    "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==",
    "MPL-2.0",
    "axe-core",
    "the accessibility checks the site test runs on every page (axe.min.js); no page loads it",
)
PACKAGES = (HTML_MANAGER, REQUIREJS, ANYWIDGET, MATHJAX, AXE_CORE)

# MathJax's tex-chtml.js already holds the TeX packages base, ams, newcommand, noundefined,
# require, autoload and configmacros. Other macros (\boldsymbol, \cancel, \color, ...) make its
# autoload fetch input/tex/extensions/NAME.js: the ones vendored are listed here, plus the
# extensions they depend on (read from the loader's table in tex-chtml.js). Add a name and
# re-vendor if a page uses a macro from another package (tests/test_site.py reports the 404).
MATHJAX_TEX_EXTENSIONS = ("boldsymbol", "braket", "cancel", "color", "mathtools")
_MATHJAX_TEX_BUILT_IN = {
    "base", "ams", "newcommand", "noundefined", "require", "autoload", "configmacros",
}

# LICENSE texts for packages whose npm tarball ships none.
_REQUIREJS_LICENSE = """\
The requirejs npm package ships no LICENSE file. The header of require.js {version} reads:

  @license RequireJS {version} Copyright jQuery Foundation and other contributors.
  Released under MIT license, https://github.com/requirejs/requirejs/blob/master/LICENSE

require.min.js is require.js minified by the r.js optimizer of the same package; it keeps
that header.

MIT License

Copyright jQuery Foundation and other contributors

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in
all copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
THE SOFTWARE.
"""

_HTML_MANAGER_LICENSE = """\
The @jupyter-widgets/html-manager npm package ships no LICENSE file; its package.json says
BSD-3-Clause, and it is built from https://github.com/jupyter-widgets/ipywidgets, whose LICENSE
follows. Notices of the third-party code bundled in embed-amd.js are in THIRD-PARTY-NOTICES.txt
(the package's dist/embed.js.LICENSE.txt).

Copyright (c) 2015 Project Jupyter Contributors
All rights reserved.

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this
   list of conditions and the following disclaimer.

2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.

3. Neither the name of the copyright holder nor the names of its
   contributors may be used to endorse or promote products derived from
   this software without specific prior written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
"""

_REQUIRE_CONFIG = """\
// Written by hutchinson_course/authoring/vendor.py: edit that, not this.
// Loaded before require.min.js and html-manager on pages with widgets (nb_ipywidgets_js in
// _config.yml). Found from this script's own address, so it works from a page at any depth.
(function () {{
  var vendor = document.currentScript.src.replace(/[^/]*$/, "");

  // html-manager asks require.js for further modules (anywidget, ...) by name, relative to
  // baseUrl. Its bundled modules look for their icon fonts beside their own require.js
  // address (their webpack public path), "@jupyter-widgets/NAME" or
  // "@jupyter-widgets/html-manager/dist/libembed-amd": map those names onto the folder that
  // holds the fonts.
  window.require = {{
    baseUrl: vendor + "html-manager/",
    paths: {{
      "@jupyter-widgets": ".",
      "@jupyter-widgets/html-manager/dist": ".",
      anywidget: "../anywidget/index",
    }},
  }};

  // ipywidgets' typeset() calls MathJax 2's MathJax.Hub.Queue whenever window.MathJax exists
  // (for widget labels), which throws under MathJax 3: give it a MathJax 3 equivalent.
  document.addEventListener("DOMContentLoaded", function () {{
    var mathjax = window.MathJax;
    if (!mathjax || mathjax.Hub || !mathjax.startup || !mathjax.startup.promise) return;
    mathjax.Hub = {{
      Queue: function (job) {{
        var element = job && job[2];
        if (!element) return;
        mathjax.startup.promise = mathjax.startup.promise
          .then(function () {{ return mathjax.typesetPromise([element]); }})
          .catch(function (error) {{ console.warn("MathJax could not typeset a widget", error); }});
      }},
    }};
  }});
}})();
"""


def _run(cmd: list[str], cwd: Path) -> str:
    try:
        done = subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError as exc:  # npm or node missing
        raise RuntimeError(f"{cmd[0]} is needed to vendor the JavaScript: {exc}") from exc
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{exc.stdout}\n{exc.stderr}") from exc
    return done.stdout


def _fetch(pkg: Package, work: Path, npm: str) -> Path:
    """npm pack NAME@VERSION, check the tarball's integrity, unpack it; return package/."""
    spec = f"{pkg.name}@{pkg.version}"
    out = _run([npm, "pack", spec, "--json", "--pack-destination", str(work)], work)
    (info,) = json.loads(out)
    tarball = work / info["filename"]
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if digest != pkg.integrity:
        raise RuntimeError(f"{pkg.name}@{pkg.version}: integrity {digest}, pinned {pkg.integrity}")
    dest = work / pkg.folder
    with tarfile.open(tarball) as tar:
        tar.extractall(dest, filter="data")
    return dest / "package"


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)


def _vendor_html_manager(src: Path, out: Path) -> None:
    dist = src / "dist"
    _copy(dist / "embed-amd.js", out / "embed-amd.js")
    # Browsers that read woff2 (all current ones) fetch only the .woff2 of each icon font.
    for font in sorted(dist.glob("*.woff2")):
        _copy(font, out / font.name)
    _copy(dist / "embed.js.LICENSE.txt", out / "THIRD-PARTY-NOTICES.txt")
    (out / "LICENSE").write_text(_HTML_MANAGER_LICENSE)


def _vendor_requirejs(src: Path, out: Path, node: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        # r.js reserves the module name "require": minify a copy under another name.
        shutil.copyfile(src / "require.js", base / "requirelib.js")
        _run(
            [node, str(src / "bin" / "r.js"), "-o", f"baseUrl={base}", "name=requirelib",
             f"out={base / 'require.min.js'}", "skipModuleInsertion=true", "optimize=uglify"],
            base,
        )
        _copy(base / "require.min.js", out / "require.min.js")
    (out / "LICENSE").write_text(_REQUIREJS_LICENSE.format(version=REQUIREJS.version))


def _vendor_anywidget(src: Path, out: Path) -> None:
    _copy(src / "dist" / "index.js", out / "index.js")
    _copy(src / "LICENSE", out / "LICENSE")


def _vendor_axe_core(src: Path, out: Path) -> None:
    _copy(src / "axe.min.js", out / "axe.min.js")
    _copy(src / "LICENSE", out / "LICENSE")


def _vendor_mathjax(src: Path, out: Path) -> list[str]:
    es5 = src / "es5"
    _copy(es5 / "tex-chtml.js", out / "tex-chtml.js")
    fonts = Path("output") / "chtml" / "fonts" / "woff-v2"
    for font in sorted((es5 / fonts).glob("*.woff")):
        _copy(font, out / fonts / font.name)
    extensions = Path("input") / "tex" / "extensions"
    names = _tex_extensions_with_dependencies((es5 / "tex-chtml.js").read_text())
    for name in names:
        _copy(es5 / extensions / f"{name}.js", out / extensions / f"{name}.js")
    _copy(src / "LICENSE", out / "LICENSE")
    return names


def _tex_extensions_with_dependencies(loader_js: str) -> list[str]:
    """MATHJAX_TEX_EXTENSIONS and what they need, minus what tex-chtml.js already holds."""
    table = {
        name: re.findall(r'"\[tex\]/(\w+)"', deps)
        for name, deps in re.findall(r'"\[tex\]/(\w+)":\[((?:"[^"]*",?)*)\]', loader_js)
    }
    wanted, todo = set(), list(MATHJAX_TEX_EXTENSIONS)
    while todo:
        name = todo.pop()
        if name not in wanted and name not in _MATHJAX_TEX_BUILT_IN:
            wanted.add(name)
            todo.extend(table.get(name, []))
    return sorted(wanted)


def _readme(sizes: dict[str, int], extensions: list[str]) -> str:
    rows = "\n".join(
        f"| [{p.name}](https://www.npmjs.com/package/{p.name}/v/{p.version}) | {p.version} "
        f"| {p.licence} | `{p.folder}/` ({sizes[p.folder] / 1024:.0f} KiB) | {p.why} |"
        for p in PACKAGES
    )
    return f"""\
# Vendored JavaScript

Written by `hutchinson_course/authoring/vendor.py`; do not edit by hand. The website must work
with no network, so the scripts that pages would otherwise load from CDNs are copied here from
pinned npm packages (sha512-checked), keeping only the files a page loads plus each licence.
Sphinx copies this folder to `_static/vendor/`; the `sphinx:` section of `_config.yml` points
myst-nb (`nb_ipywidgets_js`) and Sphinx (`mathjax_path`) at it.

| package | version | licence | here | what for |
| --- | --- | --- | --- | --- |
{rows}

`require-config.js` (also written by the script) runs before require.js on pages with widgets.
It sets require.js's `baseUrl` to `html-manager/`, found from the script's own address so that
it works from any page depth, and maps module names so that html-manager finds anywidget and
its icon fonts there. It also gives ipywidgets the `MathJax.Hub.Queue` of MathJax 2 that it
calls for widget labels, on top of MathJax 3 (without it, a page with both throws).

Only the `.woff2` icon fonts of html-manager are kept (every current browser takes those).
MathJax keeps `tex-chtml.js`, its woff-v2 fonts and, of the TeX extensions its autoload fetches
on demand, {', '.join(f'`{e}`' for e in extensions)}
(`MATHJAX_TEX_EXTENSIONS` in the script, with their dependencies).

To re-vendor (needs `npm` and `node`, and the npm registry):

    make vendor        # = .venv/bin/python -m hutchinson_course.authoring.vendor .

To change a version, edit `PACKAGES` in `vendor.py` (its integrity from
`npm view NAME@VERSION dist.integrity`) and run it again; then `tests/test_site.py` checks that
every page still renders with no outside request.
"""


def vendor_js(root: str | Path = ".", *, npm: str = "npm", node: str = "node") -> Path:
    """Re-create ``ROOT/assets/vendor`` from the pinned npm packages; return its path."""
    out = Path(root).resolve() / VENDOR_DIR
    with tempfile.TemporaryDirectory(prefix="vendor-js-") as tmp:
        work = Path(tmp)
        sources = {p.folder: _fetch(p, work, npm) for p in PACKAGES}
        staged = work / "vendor"
        _vendor_html_manager(sources[HTML_MANAGER.folder], staged / HTML_MANAGER.folder)
        _vendor_requirejs(sources[REQUIREJS.folder], staged / REQUIREJS.folder, node)
        _vendor_anywidget(sources[ANYWIDGET.folder], staged / ANYWIDGET.folder)
        extensions = _vendor_mathjax(sources[MATHJAX.folder], staged / MATHJAX.folder)
        _vendor_axe_core(sources[AXE_CORE.folder], staged / AXE_CORE.folder)
        (staged / "require-config.js").write_text(_REQUIRE_CONFIG.format())
        sizes = {
            p.folder: sum(f.stat().st_size for f in (staged / p.folder).rglob("*") if f.is_file())
            for p in PACKAGES
        }
        (staged / "README.md").write_text(_readme(sizes, extensions))
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staged, out)
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = vendor_js(args[0] if args else ".")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"vendored into {out} ({total / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
