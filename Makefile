# Two front-door commands: `make demo` and `make test`. Both create/update .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The flagship labs that `make demo` reproduces into results/.
DEMO_LABS ?= balancedness diagonal-nets matrix-sensing benign-overfitting edge-of-stability
PYTEST_WORKERS ?= 2

.PHONY: setup demo test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	@for lab in $(DEMO_LABS); do \
	  $(BIN)/sharp-theory reproduce $$lab --out results/$$lab || exit 1; \
	done
	$(BIN)/sharp-theory report --out results

test: setup
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q

clean:
	rm -rf $(VENV) results .pytest_cache .hypothesis
