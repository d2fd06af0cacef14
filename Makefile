# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.semscale-installed
DEMO_DIR ?= demo-data
RUN_DIR ?= runs/demo
CLIP_SERVER_ENV ?= benchmarks/.envs/clip-server-0.8.3

.PHONY: install run test bench bench-gpu lint demo-sweep demo-report package package-test clean clip-server-env

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -e ".[gui,test,scale,vlm]"
	$(PY) -m pip install --no-deps clip_benchmark  # semscale[benchmarks] without its evaluation-only dependencies
	touch $(STAMP)

install: $(STAMP)

## Start the desktop app. Needs a display; checks (as root: installs) the libraries Qt's xcb plugin needs.
run: install
	@if [ -z "$${DISPLAY:-}$${WAYLAND_DISPLAY:-}$${QT_QPA_PLATFORM:-}" ]; then \
	  echo "no display (DISPLAY is not set): run 'make run' on a desktop, or 'make demo-sweep' for the terminal demo" >&2; \
	  exit 1; fi
	@case "$${QT_QPA_PLATFORM:-xcb}" in xcb*) build_scripts/desktop_libs.sh "$(PY)" ;; esac
	$(PY) -m semscale_gui.app

## A demo sweep from the terminal: both bundled demo backbones, their ensembles, the demo dataset.
## `make demo-sweep VLM=1` adds the bundled vision-language model (demo-vlm, open answers) next to them.
demo-sweep: install
	$(VENV)/bin/semscale demo-data --out $(DEMO_DIR)
	$(VENV)/bin/semscale sweep --dataset $(DEMO_DIR)/images --labels $(DEMO_DIR)/labels.csv \
		--model demo-vit --model demo-resnet $(if $(VLM),--model demo-vlm) --templates plain \
		--class-frequency $(DEMO_DIR)/$(if $(VLM),vlm_training_frequency.csv,class_frequency.csv) --out $(RUN_DIR) --overwrite

## The demo sweep's HTML report (one self-contained file: figures, tables, verdicts, how to reproduce).
demo-report: demo-sweep
	$(VENV)/bin/semscale report $(RUN_DIR) --out $(RUN_DIR)/report.html

lint: install
	$(VENV)/bin/lint-imports

## Full test suite (headless). pytest's "no tests collected" (exit 5) is not a failure.
test: install
	$(VENV)/bin/lint-imports
	@[ -f $(CLIP_SERVER_ENV)/.semscale-clip-server-env ] || echo "note: clip-as-service's environment ($(CLIP_SERVER_ENV)) is not built, so its integration tests (tests/core/test_clip_server.py) are skipped; 'make clip-server-env' builds it"
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

bench: install
	$(PY) -m benchmarks

## GPU throughput (one CUDA device, < 5 minutes): writes benchmarks/results_gpu.md; exits at once without CUDA.
bench-gpu: install
	$(PY) -m benchmarks.bench_gpu

## clip-as-service's server (clip-server 0.8.3) in its own environment, built once (~5 min, ~6 GB) and
## reused: the integration tests and the CLIP-server benchmark start it with local random weights.
clip-server-env:
	nice build_scripts/clip_server_env.sh $(CLIP_SERVER_ENV)

clean:
	rm -rf build dist *.egg-info .pytest_cache

## The installer for this OS (PyInstaller one-folder + archive), see README "Packaging".
package: install
	$(PY) -c "import PyInstaller" 2>/dev/null || $(PY) -m pip install -q -e ".[package]"
	PY="$(abspath $(PY))" build_scripts/build.sh

## Build (no archive), then check the frozen app: its self-test off-screen, what the bundle
## carries, Suggest and wordfreq offline, and its window under Xvfb with Qt's xcb platform
## (screenshot: dist/smoke/xcb-window.png). Fails if any check does.
package-test: install
	$(PY) -c "import PyInstaller" 2>/dev/null || $(PY) -m pip install -q -e ".[package]"
	PY="$(abspath $(PY))" build_scripts/build.sh --no-archive
	build_scripts/smoke_test.sh
