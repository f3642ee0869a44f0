# reclaim.docker: everything a fresh machine needs, from `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ANSIBLE_WHEEL_VERSION := 14.5.0
PYTHON312 := $(shell PYENV_VERSION=3.12.1 pyenv which python3.12 2>/dev/null || command -v python3.12)
VENV := .venv
PY := $(VENV)/bin/python
# The collection tree Ansible loads: ours (a symlink to this checkout) and community.docker.
COLLECTIONS := $(CURDIR)/.collections
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PYTHONPATH := $(CURDIR)/tests
export ANSIBLE_NOCOLOR := 1
# ansible-test needs the collection under ansible_collections/NAMESPACE/NAME as real files.
SANITY_TREE := .build/ansible_collections/reclaim/docker
# ansible-test's --venv bootstraps pip from a host we cannot reach: install its pinned
# sanity requirements from PyPI into a venv of their own and run it there, locally.
SANITY_VENV := .venv-sanity
ANSIBLE_CORE_PIN := $(shell grep '^ansible-core==' tests/requirements.txt)
# The pip that ansible-core 2.21's ansible-test bootstraps into its venvs (get_venv_packages).
ANSIBLE_TEST_PIP := 25.2

.PHONY: help setup engines demo test sanity unit integration lint bench clean matrix unit-3.9

help:
	@echo "make demo   - start three local Docker engines, seed them, and run the fleet job"
	@echo "make test   - sanity, lint, unit and integration tests against real engines"
	@echo "make bench  - speed and memory against the Docker CLI and community.docker (ratios)"
	@echo "make matrix - integration tests on every supported ansible-core, target Python, Docker SDK and"
	@echo "              community.docker (MATRIX=ci: the oldest and newest of each axis only)"

$(VENV)/.installed: tests/requirements.txt
	@test -n "$(PYTHON312)" || { echo "Python 3.12 not found (pyenv or python3.12 on PATH)"; exit 1; }
	$(PYTHON312) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip==25.3
	$(PY) -m pip install -q -r tests/requirements.txt
	touch $@

# Galaxy is not reachable: take community.docker from PyPI's `ansible` wheel, which bundles it.
$(COLLECTIONS)/.installed: $(VENV)/.installed
	rm -rf $(COLLECTIONS) && mkdir -p $(COLLECTIONS)/ansible_collections/reclaim
	$(PY) -m pip download -q --no-deps -d .cache/wheels ansible==$(ANSIBLE_WHEEL_VERSION)
	$(PY) -c "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); \
	  z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith('ansible_collections/community/docker/')])" \
	  .cache/wheels/ansible-$(ANSIBLE_WHEEL_VERSION)-py3-none-any.whl $(COLLECTIONS)
	ln -s $(CURDIR) $(COLLECTIONS)/ansible_collections/reclaim/docker
	touch $@

setup: $(VENV)/.installed $(COLLECTIONS)/.installed

$(SANITY_VENV)/.installed: tests/requirements.txt
	$(PYTHON312) -m venv $(SANITY_VENV)
	$(SANITY_VENV)/bin/pip install -q --upgrade pip==25.3
	$(SANITY_VENV)/bin/pip install -q $(ANSIBLE_CORE_PIN)
	$(SANITY_VENV)/bin/pip install -q $$(ls $(SANITY_VENV)/lib/python3.12/site-packages/ansible_test/_data/requirements/sanity.*.txt | sed 's/^/-r /')
	touch $@

engines: setup
	$(PY) -m harness install

demo: setup
	$(PY) -m harness demo

sanity: $(SANITY_VENV)/.installed
	rm -rf .build/ansible_collections && mkdir -p $(SANITY_TREE)
	git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t $(SANITY_TREE)
	mkdir -p ~/.ansible/test/cache && cp tests/sanity_support/get_pip.py ~/.ansible/test/cache/get_pip_$(subst .,_,$(ANSIBLE_TEST_PIP)).py
	cd $(SANITY_TREE) && git init -q && git add -A && \
	  PATH=$(CURDIR)/$(SANITY_VENV)/bin:$$PATH ansible-test sanity --python 3.12 --color no

unit: setup
	$(PY) -m pytest -q tests/unit

integration: engines
	$(PY) -m pytest -q tests/integration

lint: setup
	$(VENV)/bin/ansible-lint --profile production --offline --nocolor

test: sanity lint unit integration

# The compatibility matrix (tests/matrix/cells.py): each cell in its own venvs under .matrix/CELL and its own engines
# under $(MATRIX_ENGINE_STATE)-CELL. MATRIX=full (about 40 min) or ci (the oldest and newest of every axis, about
# 10 min); MATRIX_CELLS="oldest unit-3.9" runs only those cells.
MATRIX ?= full
MATRIX_CELLS ?=
MATRIX_ENGINE_STATE ?= /tmp/reclaim-engines-matrix
matrix: engines
	MATRIX_ENGINE_STATE=$(MATRIX_ENGINE_STATE) $(PY) -m matrix --set $(MATRIX) $(MATRIX_CELLS)

# The unit tests on Python 3.9 (ansible-core 2.15, tests/matrix/requirements-unit-3.9.txt), in .matrix/unit-3.9.
unit-3.9: setup
	$(PY) -m matrix unit-3.9

# Without BENCH_ARGS: the full run (23 min on the 2-CPU project machine), which rewrites its block of docs/benchmarks.md.
# Narrower, e.g.: make bench BENCH_ARGS="--images 100 --flavours 28.5 --tasks audit --runs 3" (add --docs to record it).
BENCH_ARGS ?=
bench: engines
	$(PY) -m bench $(or $(strip $(BENCH_ARGS)),--docs)

clean:
	$(PY) -m harness stop-all || true
	for state in $(MATRIX_ENGINE_STATE)-*; do [ -d "$$state" ] && RECLAIM_ENGINE_STATE=$$state $(PY) -m harness stop-all; done || true
	rm -rf .build .collections .cache .pytest_cache $(SANITY_VENV) .matrix
