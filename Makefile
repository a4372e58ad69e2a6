# Every target creates .venv and installs the project (editable, dev extras) when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean loadtest stepload soak

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lockgate demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# two pytest workers (pytest-xdist), each running whole test files: the suite uses about one core per
# worker, and module-scoped gateways and trained bundles stay in one process
test: lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15

# Load tests against the gateway on 127.0.0.1:3000 (a demo gateway is started when none answers).
loadtest: $(STAMP)
	$(BIN)/python -m loadtests.demo loadtest

stepload: $(STAMP)
	$(BIN)/python -m loadtests.demo stepload

soak: $(STAMP)
	$(BIN)/python -m loadtests.demo soak

bench: $(STAMP)
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .lockgate build *.egg-info .pytest_cache .ruff_cache
