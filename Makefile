# singerbench: `make demo` and `make test` do all their own set-up (system packages, venv, package).
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# Festival's ten diphone voices are the generated singers; fluidsynth + a GM soundfont render their backings.
SYSTEM_PACKAGES := festival festvox-kallpc16k festvox-kdlpc16k festvox-italp16k festvox-itapc16k \
	festvox-suopuhe-lj festvox-suopuhe-mv festvox-czech-dita festvox-czech-krb festvox-czech-machac \
	festvox-czech-ph fluidsynth fluid-soundfont-gm
SYSTEM_PACKAGES += chromium  # the browser test loads the report page headless (tests/test_browser.py)
EXTRAS := test,speaker,separation,hf
DEMO_DATASET ?= synth
DEMO_MODELS ?= mfcc speaker
# Three head trainings per model keep the demo inside 10 minutes on 2 cores (a paper-preset run takes
# about a minute here); leaderboard runs use the default 10.
DEMO_RUNS ?= 3
# The demo writes its own results and tables, so it never overwrites the committed 10-run leaderboard.
DEMO_OUT ?= leaderboard/demo

.PHONY: demo test test-slow perf experiment lint system setup clean-cache

demo: setup
	@for m in $(DEMO_MODELS); do $(BIN)/singerbench run --model $$m --dataset $(DEMO_DATASET) --runs $(DEMO_RUNS) \
		--output $(DEMO_OUT)/results/$$m.json || exit 1; done
	$(BIN)/singerbench leaderboard $(DEMO_OUT)/results --out $(DEMO_OUT)

test: setup
	$(BIN)/ruff check benchmark baselines tests
	$(BIN)/pytest -q -n 2 --timeout 900

test-slow: setup
	$(BIN)/pytest -q -m slow

# The protocol at FMA size: one run alone vs 10 together (capped epochs); PERF_SCALE= also runs the whole
# uncapped 10-run protocol (hours on 2 CPU cores, minutes on a GPU).
PERF_SCALE ?= --no-full
perf: setup
	$(PY) -m singerbench.perf
	$(PY) -m singerbench.perf --scale $(PERF_SCALE)

# The paper's finding, CPU-sized, on the generated singers: train a mixture and a vocal encoder with the
# contrastive recipe (tiny AST, longer patience than the smoke-test default), then evaluate both on real and
# cloned tracks. A finished training is not repeated; its evaluation is a store hit.
EXPERIMENT_TRAIN ?= --tiny --max-epochs 300 --set train_iterations=16 \
	--set lr_patience=10 --set stop_patience=30
experiment: setup
	@for input in mixture vocals; do \
		$(BIN)/singerbench train --input $$input --dataset synth $(EXPERIMENT_TRAIN) \
			--out weights/synth-$$input-tiny || exit 1; \
		$(BIN)/singerbench run --model weights/synth-$$input-tiny --dataset synth || exit 1; \
	done
	$(BIN)/singerbench leaderboard

lint: setup
	$(BIN)/ruff check benchmark baselines tests

setup: system $(VENV)/.installed

# Installs the system packages when they are missing (needs root or sudo); does nothing when they are there.
system:
	@if command -v text2wave >/dev/null && command -v fluidsynth >/dev/null \
		&& [ -e /usr/share/festival/voices/english/kal_diphone ] && [ -e /usr/share/sounds/sf2/FluidR3_GM.sf2 ] \
		&& [ -e /usr/share/festival/voices/czech/czech_ph ]; then :; \
	else \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		echo "installing system packages: $(SYSTEM_PACKAGES)"; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	fi

# torch is pinned to the CPU build these machines carry (constraints.txt); the rest follows pyproject.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt torch
	$(PY) -m pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	touch $@

clean-cache:
	rm -rf .cache
