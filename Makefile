# One-command set-up: `make train` and `make test` bootstrap .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: train test bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[keras,test]"
	touch $(STAMP)

train: $(STAMP)
	$(BIN)/digits train --hidden 128 --act relu

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/digits bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
