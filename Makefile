# The two set-up commands of the course (see README.md):
#   make book   builds the website, creating .venv with the pinned dependencies if needed
#   make test   runs the whole test suite (the same environment)
# and, optionally, `make serve` to look at the site on http://127.0.0.1:8000.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready

.PHONY: book serve test exercises env clean vendor

book: $(READY)
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going
	@echo "The website is at file://$(CURDIR)/_build/html/index.html (or run: make serve)"

serve: book
	@echo "Serving on http://127.0.0.1:8000 (Ctrl-C to stop)"
	$(BIN)/python -m http.server --directory _build/html --bind 127.0.0.1 8000

test: $(READY)
	$(BIN)/python -m pytest

exercises: $(READY)
	$(BIN)/hutchinson-author generate

env: $(READY)

# Re-vendor the website's JavaScript (widgets, MathJax) from pinned npm packages into
# assets/vendor/ (needs npm, node and the npm registry; see assets/vendor/README.md).
vendor: $(READY)
	$(BIN)/python -m hutchinson_course.authoring.vendor .

# The environment is rebuilt when the pins or the package metadata change.
$(READY): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --editable .
	touch $@

clean:
	rm -rf _build
