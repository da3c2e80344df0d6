# Set-up is part of every target: the virtual environment is made when missing, from requirements.txt
# (what lipseg_tf needs to run) and, for the tests, requirements-dev.txt (that, pytest and ruff).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-requirements
DEV_STAMP := $(VENV)/.installed-requirements-dev
PIP    := $(PY) -m pip install --quiet --disable-pip-version-check
DEMO_OUT ?= demo_out

.PHONY: demo test lint venv clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements.txt
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(PIP) -r requirements-dev.txt
	touch $(DEV_STAMP)

venv: $(STAMP)

## make demo: synthetic sample -> g_mask -> process -> U-Net and pix2pix train/test -> print -> export
demo: $(STAMP)
	$(PY) -m lipseg_tf.tools.demo --out $(DEMO_OUT)

## make lint: ruff (pyflakes, pycodestyle, import order; settings in pyproject.toml), a few seconds
lint: $(DEV_STAMP)
	$(PY) -m ruff check .

## make test: the linter, then the whole pytest suite (it lists its 15 slowest tests at the end)
test: lint
	$(PY) -m pytest -q --durations=15

clean:
	rm -rf $(DEMO_OUT) .pytest_cache .ruff_cache
