# Set-up is part of every target: the virtual environment is made from requirements.txt when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-requirements
DEMO_OUT ?= demo_out

.PHONY: demo test venv clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

## make demo: synthetic sample -> g_mask -> process -> U-Net and pix2pix train/test -> print -> export
demo: $(STAMP)
	$(PY) -m lipseg_tf.tools.demo --out $(DEMO_OUT)

## make test: the whole pytest suite
test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(DEMO_OUT) .pytest_cache
