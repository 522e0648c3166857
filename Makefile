# Everything runs from a project virtual environment that these targets create themselves.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

.PHONY: venv services demo test lint constraints bench export-backbone demo-models clean

venv: $(STAMP)

# constraints.txt pins every package to the versions the tests last passed with (reproducible installs);
# `pip install .` without it still works with the ranges in pyproject.toml.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

services:
	@bash .ci/ensure-services

# The GigE extra (PyGObject) builds against Debian's introspection headers, which `services` installs.
$(VENV)/.gige: $(STAMP)
	$(PIP) install --quiet -c constraints.txt -e '.[dev,gige]' && touch $@ || echo "PyGObject did not build: the GigE tests will skip"

test: venv services $(VENV)/.gige
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -q

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Re-pin constraints.txt to what the venv has now (after changing dependencies in pyproject.toml).
constraints: venv
	$(PIP) freeze --exclude-editable | grep -v '^edge-inspection' > constraints.txt

demo: venv
	$(VENV)/bin/inspection demo

bench: venv services
	$(PY) benchmarks/core_benchmark.py all
	$(PY) benchmarks/ingest_benchmark.py
	$(PY) benchmarks/line_latency.py

# Retrain the shipped demo models with the default preset of `inspection train`, on a generated line (seed 8,
# deterministic, kept out of git): per part 400 good images for the memory bank, 400 other good images to place
# the 1 % false-reject threshold on, and 10 images of each defect kind for the calibration report. The
# evaluation set (`inspection dataset generate`, seed 7) and the simulated line (seed 0) share no image with it.
# The images are generated again only when the generator changes (or build/demo-models is removed: do so after
# changing the counts or the seed below).
DEMO_DATA := build/demo-models

$(DEMO_DATA)/.generated: inspection/evaluation/synthetic.py | $(STAMP)
	rm -rf $(DEMO_DATA)
	$(VENV)/bin/inspection dataset generate --out $(DEMO_DATA) --train-good 400 --test-good 400 \
		--test-per-defect 10 --seed 8
	touch $@

demo-models: venv $(DEMO_DATA)/.generated
	for part in knurled_plate flange; do \
		$(VENV)/bin/inspection train --good $(DEMO_DATA)/$$part/train/good \
			--calib-good $(DEMO_DATA)/$$part/test/good --defects $(DEMO_DATA)/$$part/test \
			--out models/demo_$$part.onnx --name demo_$$part --quiet || exit 1; \
	done

export-backbone: venv
	$(PIP) install --quiet -e '.[export]'
	$(PY) models/export_backbone.py

clean:
	rm -rf $(VENV) runs bench-report eval-report demo-data demo-results out build dist .pytest_cache .ruff_cache \
		.mypy_cache inspection-results.db inspection-images
