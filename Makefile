# Six Keras projects, one command line. `make` alone lists the targets.
#   make project=mnist all        install what is missing, train, evaluate
#   make test                     the whole test suite

project ?= mnist
preset ?= default
# Extra arguments for the project's command line, e.g. ARGS="--set train.epochs=3".
ARGS ?=

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
WEB := serving/web
STAMPS := .stamps

PROJECTS := $(sort $(patsubst projects/%/project.py,%,$(wildcard projects/*/project.py)))
ifeq ($(filter $(project),$(PROJECTS)),)
$(error unknown project '$(project)'; known projects: $(PROJECTS))
endif

# Debian packages each project's offline data needs (projects/<name>/debian-packages.txt, one per line).
debs = $(strip $(foreach p,$(1),$(shell cat projects/$(p)/debian-packages.txt 2>/dev/null)))

RUN := $(PY) -m projects.$(project)
RUN_ARGS := --preset $(preset) $(ARGS)

.DEFAULT_GOAL := help
.PHONY: help install install-all train evaluate predict all bench test lint format tensorboard clean

help: ## list the targets (this text)
	@echo "usage: make [project=<name>] [preset=smoke|default|full] [ARGS='--set key=value'] <target>"
	@echo "projects: $(PROJECTS)   (now: project=$(project))"
	@echo
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-12s %s\n", $$1, $$2}'

install: $(VENV)/.installed $(WEB)/node_modules/.installed $(STAMPS)/debian-$(project) ## create .venv and install the Python, npm and Debian packages the project needs

install-all: $(VENV)/.installed $(WEB)/node_modules/.installed $(foreach p,$(PROJECTS),$(STAMPS)/debian-$(p)) ## install what every project needs (the tests use all)

$(VENV)/.installed: requirements.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip==26.3"
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip check
	@touch $@

$(WEB)/node_modules/.installed: $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(STAMPS)/debian-%: projects/%/project.py
	@mkdir -p $(STAMPS)
	@pkgs="$(call debs,$*)"; missing=""; \
	for p in $$pkgs; do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@touch $@

train: install ## train the project's model (a killed run resumes where it stopped)
	$(RUN) train $(RUN_ARGS)

evaluate: install ## evaluate model.keras on the test split: report.json, report.md, plots
	$(RUN) evaluate $(RUN_ARGS)

predict: install ## predict files: make project=mnist predict inputs="digit.png more.npy"
	$(RUN) predict $(inputs) $(RUN_ARGS)

all: install ## train, then evaluate
	$(RUN) all $(RUN_ARGS)

bench: install ## measure the project (benchmarks/<project>.py) into benchmarks/results/<project>.json
	@test -f benchmarks/$(project).py || { echo "no benchmark for $(project) yet (benchmarks/$(project).py)"; exit 2; }
	$(PY) -m benchmarks.$(project)

test: install-all ## run the whole test suite (slow tests included)
	$(PY) -m pytest

lint: install ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

tensorboard: install ## TensorBoard over the project's logs on 127.0.0.1:6006
	$(VENV)/bin/tensorboard --logdir artifacts/$(project)/logs --host 127.0.0.1 --port 6006

clean: ## delete the project's artifacts (artifacts/<project>/)
	rm -rf artifacts/$(project)
