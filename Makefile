# The two commands of the README, and the steps they are made of.
#   make serve   set up, then serve the site on http://127.0.0.1:8000 (both languages)
#   make test    set up, then run every check (package, notebooks, site, browser)

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
export NO_MKDOCS_2_WARNING := 1

.PHONY: setup serve test lint notebooks bench browser clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "*** make needs Python 3.11 or newer as '$(PYTHON)' (e.g. make test PYTHON=python3.12) ***" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

serve: setup
	$(PY) -m mkdocs serve --dev-addr 127.0.0.1:8000

# A Chromium for the browser checks, or a loud stop (scripts/ensure_chromium.sh says what to do).
browser:
	@bash scripts/ensure_chromium.sh

# Lint and format check first: a formatting slip fails in seconds, not after the notebooks.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup browser lint
	$(PY) -m pytest

# Re-execute every notebook from its notebooks/*.py source (after changing a source or the package).
notebooks: setup
	$(PY) scripts/build_notebooks.py

# The performance comparison against PyTorch's own modules (writes docs/assets/benchmark/).
bench: setup
	$(PY) benchmarks/bench_attention.py

clean:
	rm -rf $(VENV) site artifacts
