# Everything runs from a project virtual environment that these targets create themselves.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

.PHONY: venv services demo test lint bench export-backbone demo-models clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	touch $(STAMP)

services:
	@bash .ci/ensure-services

test: venv services
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -q

lint: venv
	$(VENV)/bin/ruff check .

demo: venv
	$(VENV)/bin/inspection demo

bench: venv services
	$(PY) benchmarks/core_benchmark.py all
	$(PY) benchmarks/ingest_benchmark.py
	$(PY) benchmarks/line_latency.py

# Retrain the shipped demo models from the committed sample datasets.
demo-models: venv
	$(PY) datasets/make_samples.py
	for part in knurled_plate flange; do \
		$(VENV)/bin/inspection train --good datasets/samples/$$part/train/good \
			--out models/demo_$$part.onnx --name demo_$$part --defects datasets/samples/$$part/test \
			--holdout 0.25 --quiet; \
	done

export-backbone: venv
	$(PIP) install --quiet -e '.[export]'
	$(PY) models/export_backbone.py

clean:
	rm -rf $(VENV) demo-data demo-results .pytest_cache .ruff_cache
