# The two set-up commands of the course (see README.md):
#   make book   builds the website, creating .venv with the pinned dependencies if needed
#   make test   runs the whole test suite (the same environment)
# and, optionally, `make serve` to look at the site on http://127.0.0.1:8000 and `make lab` to
# open the notebooks in JupyterLab.
#
# The course is tested on Python 3.11. Another interpreter is chosen with PYTHON, for example
#   make test PYTHON=/usr/local/bin/python3.11      or      make test PYTHON=python3.11
# (it is only used to create .venv; delete .venv to change it afterwards).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready
LAB_PORT ?= 8888
# The site test (tests/test_site.py) builds the same way, into the same _build/. Nothing is
# executed: the pages show the notebooks' committed outputs (_config.yml).
BOOK_BUILD := $(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going

.PHONY: book serve test lab exercises env clean vendor runtimes

book: $(READY)
	$(BOOK_BUILD)
	@echo "The website is at file://$(CURDIR)/_build/html/index.html (or run: make serve)"

serve: book
	@echo "Serving on http://127.0.0.1:8000 (Ctrl-C to stop)"
	$(BIN)/python -m http.server --directory _build/html --bind 127.0.0.1 8000

test: $(READY)
	$(BIN)/python -m pytest

# JupyterLab on the course's environment; notebooks open on its kernel ("Python 3 (course .venv)").
lab: $(READY)
	$(BIN)/jupyter lab --no-browser --port $(LAB_PORT) --ServerApp.root_dir=$(CURDIR) \
	    $(if $(filter 0,$(shell id -u)),--allow-root)

# Run every chapter and exercise notebook top to bottom, one after another, write the seconds to
# book/runtimes.json (shown on the site's run-time page) and print them. Run it on an idle machine.
runtimes: $(READY)
	$(BIN)/python -m hutchinson_course.authoring.runtimes --measure .

exercises: $(READY)
	$(BIN)/hutchinson-author generate

env: $(READY)

# Re-vendor the website's JavaScript (widgets, MathJax) from pinned npm packages into
# assets/vendor/ (needs npm, node and the npm registry; see assets/vendor/README.md).
vendor: $(READY)
	$(BIN)/python -m hutchinson_course.authoring.vendor .

# The environment is rebuilt when the pins or the package metadata change.
# The kernel is registered inside .venv (--sys-prefix) under the name the notebooks ask for, so
# the venv's JupyterLab runs them on the venv's Python without asking.
$(READY): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { \
	    echo "The course needs Python 3.11; '$(PYTHON)' is $$($(PYTHON) --version 2>&1)."; \
	    echo "Choose another interpreter with PYTHON=..., e.g. make $(MAKECMDGOALS) PYTHON=python3.11"; \
	    exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --editable .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (course .venv)"
	touch $@

clean:
	rm -rf _build
