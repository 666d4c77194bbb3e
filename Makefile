# Two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: run web serve test lint typecheck pytest bench soak dist clean docker-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP_DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP_RUN)

run: $(STAMP_RUN)
	$(BIN)/qrm-tui --demo $(ARGS)

# The demo in a browser: http://127.0.0.1:8000, every tab its own session on one demo.
web: $(STAMP_RUN)
	$(BIN)/qrm-tui --web --demo $(ARGS)

serve: $(STAMP_RUN)
	$(BIN)/mock-qrm serve $(ARGS)

lint: $(STAMP_DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP_DEV)
	$(BIN)/mypy

# One worker per core, at most two: the suite's budget is 5 minutes on 2 cores, and more
# workers than cores would slow the tests that wait on the clock of a loaded machine.
pytest: $(STAMP_DEV)
	$(BIN)/pytest -q -n auto --maxprocesses 2 $(ARGS)

test: lint typecheck pytest

bench: $(STAMP_DEV)
	$(BIN)/python -m benchmarks $(ARGS)

soak: $(STAMP_DEV)
	$(BIN)/python -m benchmarks.soak $(ARGS)

# A wheel in dist/ for another project's environment: `pip install dist/qrm_tui-*.whl`.
dist: | $(BIN)/python
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist .

# The image and compose.yaml, end to end (needs Docker; not part of `make test`).
docker-test: $(STAMP_RUN)
	scripts/docker-test

clean:
	rm -rf $(VENV) build dist *.egg-info
