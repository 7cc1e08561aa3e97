# The two commands of the README, and the steps they are made of.
#   make serve   set up, then serve the site on http://127.0.0.1:8000 (both languages)
#   make test    set up, then run every check (package, notebooks, site, browser)
#   make check   the quick checks to run while working: lint, then every test that needs no Chromium,
#                no notebook execution and no site build (pytest -m "not browser and not notebooks and not site")
# For the deploy workflow:
#   make site        build the site into site/ (SITE_URL=https://OWNER.github.io/REPO/ sets its address)
#   make offline     the offline copy of the site: site/simple-llm-offline.zip (run after make site)
# And:
#   make diagrams    draw the mermaid diagrams to SVG again after changing one (docs/assets/diagrams/)
#   make lighthouse  Lighthouse scores of a few pages, served like Pages (prints the table)
#   make set-repo REPO=owner/name   after forking: every link that names the repository names the fork

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
export NO_MKDOCS_2_WARNING := 1

.PHONY: setup serve test check lint notebooks bench browser clean site offline diagrams lighthouse set-repo

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

# Lint and format check (make check runs it first; make test beside the tests).
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/actionlint .github/workflows/*.yml
	$(VENV)/bin/zizmor --offline --quiet .github/

# The checks run as two pytest processes side by side (scripts/run_tests.py says how they split),
# the lint beside them: a lint failure still stops the tests within seconds.
test: setup browser
	$(PY) scripts/run_tests.py --beside "$(MAKE) --no-print-directory lint"

# The inner loop: under 2 minutes on 2 cores (README and CONTRIBUTING say what it leaves to make test).
check: setup lint
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m "not browser and not notebooks and not site"

# Re-execute every notebook from its notebooks/*.py source (after changing a source or the package).
notebooks: setup
	$(PY) scripts/build_notebooks.py

# The three benchmarks: attention against PyTorch's own modules, generation with and without the
# KV cache, tiled attention (each writes its tables into docs/assets/benchmark/).
bench: setup
	$(PY) benchmarks/bench_attention.py
	$(PY) benchmarks/bench_generation.py
	$(PY) benchmarks/bench_tiled.py

site: setup
	$(PY) -m mkdocs build --strict --site-dir site

offline: setup
	$(PY) scripts/build_offline.py --site site --zip site/simple-llm-offline.zip

diagrams: setup browser
	$(PY) scripts/render_diagrams.py

# The npm package lighthouse goes into node_modules/ (not committed); it drives Debian's Chromium.
LIGHTHOUSE_VERSION ?= 12.8.2
node_modules/.bin/lighthouse:
	npm install --no-save --no-audit --no-fund --silent lighthouse@$(LIGHTHOUSE_VERSION)

lighthouse: setup browser node_modules/.bin/lighthouse
	$(PY) -m mkdocs build --strict --site-dir build/lighthouse-site
	$(PY) scripts/lighthouse.py build/lighthouse-site

# Standard library only: it works before anything is installed.
set-repo:
	@$(PYTHON) scripts/set_repo.py "$(REPO)"

clean:
	rm -rf $(VENV) site build artifacts node_modules
