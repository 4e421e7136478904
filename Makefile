# singerbench: `make demo` and `make test` do all their own set-up (system packages, venv, package).
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# Festival's ten diphone voices are the generated singers of the tiny/small/full presets; fluidsynth + a GM
# soundfont render their backings. The large preset adds every voice of benchmark/synthgen/voices.py: MBROLA
# (contrib; voices non-free), RHVoice and Pico (non-free), Flite and espeak-ng (main).
FESTIVAL_PACKAGES := festival festvox-kallpc16k festvox-kdlpc16k festvox-italp16k festvox-itapc16k \
	festvox-suopuhe-lj festvox-suopuhe-mv festvox-czech-dita festvox-czech-krb festvox-czech-machac \
	festvox-czech-ph fluidsynth fluid-soundfont-gm
MBROLA_VOICES := af1 br1 br2 br3 br4 ca1 ca2 cr1 cz2 de1 de2 de3 de4 de5 de6 de7 de8 ee1 en1 es1 es2 fr1 fr2 \
	fr3 fr4 fr5 fr6 fr7 gr2 hu1 ic1 id1 ir1 it1 it2 it3 it4 la1 lt1 lt2 ma1 nl2 nl3 pl1 pt1 ro1 sw1 sw2 us1 us2 us3
RHVOICE_LANGUAGES := english russian ukrainian polish brazilian-portuguese albanian esperanto kyrgyz macedonian tatar
VOICE_PACKAGES := mbrola espeak-ng $(addprefix mbrola-,$(MBROLA_VOICES)) rhvoice \
	$(addprefix rhvoice-,$(RHVOICE_LANGUAGES)) libttspico-utils flite
SYSTEM_PACKAGES := $(FESTIVAL_PACKAGES) $(VOICE_PACKAGES)
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

# The paper's finding, CPU-sized, on the generated singers at scale (preset large: 100 people, 5 engines):
# train a mixture and a vocal encoder with the contrastive recipe (tiny AST, longer patience than the
# smoke-test default, 100 epochs at most: each is about 10 s on a CPU core) on large's training songs,
# then evaluate them, mfcc and speaker on real and cloned tracks, with the class-count sweep 10, 25, 50, 100
# (every large singer is cloned, so the steps below 100 score the real tracks only; EXPERIMENT_RUN adds
# run options). The two trained encoders are committed: a weights folder with its model.safetensors is
# not trained again (delete it to retrain); an evaluation already run is a store hit.
EXPERIMENT_DATA ?= --dataset synth --synth-preset large
EXPERIMENT_RUN ?= --probe --sweep
EXPERIMENT_TRAIN ?= --tiny --max-epochs 100 --set train_iterations=16 \
	--set lr_patience=10 --set stop_patience=30
experiment: setup
	@for input in mixture vocals; do \
		[ -f weights/synth-large-$$input-tiny/model.safetensors ] || \
		$(BIN)/singerbench train --input $$input $(EXPERIMENT_DATA) $(EXPERIMENT_TRAIN) \
			--out weights/synth-large-$$input-tiny || exit 1; \
		$(BIN)/singerbench run --model weights/synth-large-$$input-tiny $(EXPERIMENT_DATA) $(EXPERIMENT_RUN) \
			|| exit 1; \
	done
	@for m in mfcc speaker; do \
		$(BIN)/singerbench run --model $$m $(EXPERIMENT_DATA) $(EXPERIMENT_RUN) || exit 1; \
	done
	$(BIN)/singerbench leaderboard

lint: setup
	$(BIN)/ruff check benchmark baselines tests

setup: system $(VENV)/.installed

# Installs the system packages when they are missing (needs root or sudo); quick when everything is there.
# MBROLA, its voices, RHVoice and Pico live in Debian's contrib and non-free sections, which a stock image
# does not enable: they are added to the components of Debian's apt sources (deb822 .sources files or the
# one-line sources.list form), once.
system:
	@have=$$(dpkg-query -W -f='$${Package} $${Status}\n' $(SYSTEM_PACKAGES) 2>/dev/null | grep -c ' installed$$'); \
	if [ "$$have" = "$(words $(SYSTEM_PACKAGES))" ]; then :; else \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		for f in /etc/apt/sources.list.d/*.sources; do [ -f "$$f" ] || continue; \
			$$SUDO sed -i -E '/^Components:/{/contrib/!s/$$/ contrib/; / non-free( |$$)/!s/$$/ non-free/}' "$$f"; done; \
		if [ -f /etc/apt/sources.list ]; then \
			$$SUDO sed -i -E '/^deb(-src)? .*debian/{/ contrib/!s/$$/ contrib/; / non-free( |$$)/!s/$$/ non-free/}' /etc/apt/sources.list; fi; \
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
