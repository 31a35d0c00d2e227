# Six Keras projects, one command line. `make` alone lists the targets.
#   make project=mnist all        install what is missing, train, evaluate
#   make test                     the whole test suite

project ?= mnist
preset ?= default
# Extra arguments for the project's command line, e.g. ARGS="--set train.epochs=3".
ARGS ?=
# pytest-xdist workers for `make test`: two files train at once (each test file stays on one worker).
TEST_WORKERS ?= 2

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
WEB := serving/web
STAMPS := .stamps

PROJECTS := $(sort $(patsubst projects/%/project.py,%,$(wildcard projects/*/project.py)))
ifeq ($(filter $(project),$(PROJECTS)),)
$(error unknown project '$(project)'; known projects: $(PROJECTS))
endif

# Debian packages, one per line, in projects/<name>/debian-packages.txt (a project's offline data)
# and tests/debian-packages.txt (the browser the demo tests drive).
debs = $(strip $(shell cat $(1) 2>/dev/null))

RUN := $(PY) -m projects.$(project)
RUN_ARGS := --preset $(preset) $(ARGS)

.DEFAULT_GOAL := help
.PHONY: help install install-all train evaluate export predict demo tune pretrain compare optimize coreml all bench bench-optimize bench-formats bench-edge test lint format serve gradio bench-serving tensorboard clean

help: ## list the targets (this text)
	@echo "usage: make [project=<name>] [preset=smoke|default|full] [ARGS='--set key=value'] <target>"
	@echo "projects: $(PROJECTS)   (now: project=$(project))"
	@echo
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-14s %s\n", $$1, $$2}'

install: $(VENV)/.installed $(WEB)/node_modules/.installed $(STAMPS)/debian-$(project) ## create .venv and install the Python, npm and Debian packages the project needs

install-all: $(VENV)/.installed $(WEB)/node_modules/.installed $(foreach p,$(PROJECTS) tests,$(STAMPS)/debian-$(p)) ## install what every project needs (the tests use all)

$(VENV)/.installed: requirements.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip==26.3"
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip check
	@touch $@

$(WEB)/node_modules/.installed: $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(STAMPS)/debian-tests: tests/debian-packages.txt
$(STAMPS)/debian-%: $(wildcard projects/%/debian-packages.txt)
	@mkdir -p $(STAMPS)
	@pkgs="$(call debs,$(if $(filter tests,$*),tests,projects/$*)/debian-packages.txt)"; missing=""; \
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

export: install ## SavedModel version in artifacts/serving/, TF Lite, TF.js, ONNX; parity.json/.md against Keras
	$(RUN) export $(RUN_ARGS)

demo: install ## the browser demo (TF.js) on http://127.0.0.1:8080/, exporting first if needed
	$(RUN) demo $(RUN_ARGS)

tune: install ## keras-tuner search (resumes if killed): artifacts/<project>/tuning/results.md, best.json for --config
	$(RUN) tune $(RUN_ARGS)

pretrain: install ## classifier: pretraining of the backbone (SimCLR; preset=pretrained: supervised on other classes); chatbot: masked-language pretraining of the encoder
	$(RUN) pretrain $(RUN_ARGS)

compare: install ## one training per value of a key, curves overlaid: make project=mnist compare ARGS="--vary train.learning_rate=1e-3,3e-3"
	$(RUN) compare $(RUN_ARGS)

optimize: install ## prune and quantization-aware train model.keras: TF Lite size/accuracy/latency in optimize/optimize.md
	$(RUN) optimize $(RUN_ARGS)

coreml: install ## convert the latest exported SavedModel to Core ML: artifacts/<project>/export/<project>.mlpackage (runs on macOS)
	$(RUN) coreml $(RUN_ARGS)

predict: install ## predict files: make project=mnist predict inputs="digit.png more.npy"
	$(RUN) predict $(inputs) $(RUN_ARGS)

all: install ## train, then evaluate
	$(RUN) all $(RUN_ARGS)

bench: install ## measure the project (benchmarks/<project>.py) into benchmarks/results/<project>.json
	@test -f benchmarks/$(project).py || { echo "no benchmark for $(project) yet (benchmarks/$(project).py)"; exit 2; }
	$(PY) -m benchmarks.$(project)
	$(PY) -m benchmarks.readme_tables

bench-optimize: install ## pruning and QAT against their goals, merged into benchmarks/results/<project>.json
	@test -f benchmarks/$(project)_optimize.py || { echo "no benchmark for $(project) yet (benchmarks/$(project)_optimize.py)"; exit 2; }
	$(PY) -m benchmarks.$(project)_optimize

bench-formats: install ## speed, size and accuracy of every exported format into benchmarks/results/<project>_formats.json
	$(PY) -m benchmarks.formats --project $(project)

bench-edge: install ## int8/float16 TF Lite on one thread, batch 1: latency, peak memory, size into benchmarks/results/edge.json
	$(PY) -m benchmarks.edge --project $(project)

test: install-all ## run the whole test suite (slow tests included)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup

lint: install ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

serve: install ## the embedded TF Serving-compatible server over artifacts/serving: REST 127.0.0.1:8501, gRPC :8500
	$(PY) -m serving.server --repository artifacts/serving

gradio: install ## the project's Gradio demo over its served SavedModel on http://127.0.0.1:7860
	$(PY) -m serving.gradio_app --project $(project) --repository artifacts/serving

bench-serving: install ## load test of the embedded server against a naive FastAPI server into benchmarks/results/serving.json
	@command -v wrk >/dev/null && command -v h2load >/dev/null || { echo "installing Debian packages: wrk nghttp2-client"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk nghttp2-client; }
	$(PY) -m benchmarks.serving --model $(project)
	$(PY) -m benchmarks.readme_tables

tensorboard: install ## TensorBoard over the project's logs on 127.0.0.1:6006
	$(VENV)/bin/tensorboard --logdir artifacts/$(project)/logs --host 127.0.0.1 --port 6006

.PHONY: lessons
lessons: install ## JupyterLab on http://127.0.0.1:8888/ over lessons/ (the roadmap's concepts as notebooks)
	$(VENV)/bin/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=lessons $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

clean: ## delete the project's artifacts (artifacts/<project>/ and its served versions in artifacts/serving/)
	rm -rf artifacts/$(project) artifacts/serving/$(project)
