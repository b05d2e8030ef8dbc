# The two commands a new user runs, each of which sets up what it needs first:
#   make app    install the requirements into .venv and open the drawing app
#   make test   install the dev requirements (and Chromium for the browser tests), run the tests
# Everything else here is what those two are built from.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: app test test-fast lint bench train chromium clean

app: $(VENV)/.app-installed
	$(PY) -m streamlit run app.py

test: $(VENV)/.dev-installed chromium
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m mypy
	$(PY) -m pytest

# The edit-test loop: no browser, no training run as a command.
test-fast: $(VENV)/.dev-installed
	$(PY) -m pytest -m "not browser and not slow"

lint: $(VENV)/.dev-installed
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m mypy
	$(PY) -m ruff format --check .

train: $(VENV)/.app-installed
	$(PY) train.py

bench: $(VENV)/.dev-installed
	$(PY) bench/bench_train.py

chromium:
	@bash scripts/ensure-chromium.sh

$(VENV)/.venv-created:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	touch $@

$(VENV)/.app-installed: requirements.txt | $(VENV)/.venv-created
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(VENV)/.venv-created
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.app-installed

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis artifacts
