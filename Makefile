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

.PHONY: help setup engines demo test sanity unit integration lint docs docs-lint release-notes bench clean matrix unit-3.9

help:
	@echo "make demo   - start three local Docker engines, seed them, and run the fleet job"
	@echo "make test   - sanity, lint, docs-lint, unit and integration tests against real engines"
	@echo "make docs   - the docs site (antsibull-docs and Sphinx) in .build/docsite/build/html"
	@echo "make release-notes - lint the changelog fragments; CHANGELOG.md once a release is cut (a preview until then)"
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
ANSIBLE_WHEEL := .cache/wheels/ansible-$(ANSIBLE_WHEEL_VERSION)-py3-none-any.whl
# Extract collection $(1) (namespace/name) from the `ansible` wheel into $(COLLECTIONS).
extract_collection = $(PY) -c "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); \
	  z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith('ansible_collections/$(1)/')])" \
	  $(ANSIBLE_WHEEL) $(COLLECTIONS)
$(COLLECTIONS)/.installed: $(VENV)/.installed
	rm -rf $(COLLECTIONS) && mkdir -p $(COLLECTIONS)/ansible_collections/reclaim
	$(PY) -m pip download -q --no-deps -d .cache/wheels ansible==$(ANSIBLE_WHEEL_VERSION)
	$(call extract_collection,community/docker)
	ln -s $(CURDIR) $(COLLECTIONS)/ansible_collections/reclaim/docker
	touch $@

# community.docker's own dependency (its inventory plugins' doc fragment): antsibull-docs reads every collection's
# documentation when it validates references. Galaxy installs it with community.docker; here it comes from the wheel.
LIBRARY_INVENTORY_FILTERING := $(COLLECTIONS)/ansible_collections/community/library_inventory_filtering_v1
$(LIBRARY_INVENTORY_FILTERING)/MANIFEST.json: | $(COLLECTIONS)/.installed
	$(call extract_collection,community/library_inventory_filtering_v1)

setup: $(VENV)/.installed $(COLLECTIONS)/.installed $(LIBRARY_INVENTORY_FILTERING)/MANIFEST.json

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

# Test files run side by side, each on one worker with engines of its own (tests/integration/conftest.py): most of
# their time is spent waiting on engines and on ansible-playbook's processes.
INTEGRATION_WORKERS ?= 4
integration: engines
	$(PY) -m pytest -q -n $(INTEGRATION_WORKERS) --dist loadfile tests/integration

lint: setup
	$(VENV)/bin/ansible-lint --profile production --offline --nocolor

test: sanity lint docs-lint unit integration

# antsibull-docs and antsibull-changelog run ansible and ansible-doc: the venv's.
DOCS_PATH := PATH=$(CURDIR)/$(VENV)/bin:$$PATH
DOCSITE := .build/docsite

# The docs site: every module's and role's documentation and the scenario guides of docs/docsite/rst, built offline.
# build.sh treats every Sphinx warning as an error; tests/docsite_log.py then accepts only those that an unreachable
# intersphinx inventory causes (the inventories, and labels of docs.ansible.com such as community.docker's modules)
# and fails on any other, or when the build did not finish.
docs: setup
	rm -rf $(DOCSITE) && mkdir -p $(DOCSITE)
	$(DOCS_PATH) antsibull-docs sphinx-init --use-current --fail-on-error --dest-dir $(DOCSITE) \
	  --project reclaim.docker --title "reclaim.docker" --html-short-title "reclaim.docker" reclaim.docker
	$(DOCS_PATH) $(DOCSITE)/build.sh > $(DOCSITE)/build.log 2>&1 || true
	$(PY) tests/docsite_log.py $(DOCSITE)/build.log $(DOCSITE)/build/html/index.html
	@echo "The docs site: $(DOCSITE)/build/html/index.html"

# The documentation as antsibull-docs checks it for a docsite (plugin and role docs, docs/docsite, every reference to
# any collection), the changelog fragments and changelogs/changelog.yaml.
docs-lint: setup
	$(DOCS_PATH) antsibull-docs lint-collection-docs --plugin-docs --validate-collection-refs=all \
	  --disallow-unknown-collection-refs --check-extra-docs-refs .
	$(VENV)/bin/antsibull-changelog lint
	$(VENV)/bin/antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml

# The release notes. Once a release is cut, CHANGELOG.md from changelogs/changelog.yaml. Before (no release in
# changelogs/changelog.yaml yet), a preview: galaxy.yml's version released in a copy of the tree, in
# .build/release-preview/ansible_collections/reclaim/docker/CHANGELOG.md; the checkout is left as it is.
# Cutting the release is the committer's last step, once every fragment exists:
#   antsibull-changelog release --version $(VERSION)   (writes CHANGELOG.md and changelogs/changelog.yaml, removes the
#                                                       fragments; the roles are listed by their version_added)
VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
RELEASE_PREVIEW := .build/release-preview/ansible_collections/reclaim/docker
release-notes: setup
	$(VENV)/bin/antsibull-changelog lint
	if grep -q '^releases: {}' changelogs/changelog.yaml; then \
	  rm -rf .build/release-preview && mkdir -p $(RELEASE_PREVIEW) && \
	  git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t $(RELEASE_PREVIEW) && \
	  cd $(RELEASE_PREVIEW) && \
	  $(DOCS_PATH) ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.build/release-preview:$(COLLECTIONS) \
	    antsibull-changelog release --version $(VERSION) && \
	  echo "No release yet: a preview of $(VERSION)'s notes is in $(RELEASE_PREVIEW)/CHANGELOG.md"; \
	else \
	  $(DOCS_PATH) antsibull-changelog generate; \
	fi

# The compatibility matrix (tests/matrix/cells.py): each cell in its own venvs under .matrix/CELL and its own engines
# under $(MATRIX_ENGINE_STATE)-CELL. MATRIX=full (about 40 min) or ci (the oldest and newest of every axis, about
# 7 min); MATRIX_CELLS="oldest unit-3.9" runs only those cells. A cell's integration files run side by side on
# MATRIX_WORKERS workers (default 3), each with engines of its own.
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
