# The README's commands. Each does its own set-up, idempotently.
#   make run    synthesize the mini corpus and run the mini recipe end to end
#   make test   run the test suite
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of PyTorch when this machine has its wheel (about 700 MB installed); otherwise
# PyPI's default build (a CUDA build, about 6 GB with its nvidia packages).
TORCH_SPEC ?= $(shell ls /opt/wheels/torch-2.13.0+cpu-*.whl >/dev/null 2>&1 && echo 'torch==2.13.0' || echo 'torch>=2.1')
STAMP := $(VENV)/.vqspeech-installed

.PHONY: setup system-packages run test clean-venv

setup: system-packages $(STAMP)

system-packages:
	@missing=""; \
	command -v flite >/dev/null || missing="$$missing flite"; \
	command -v festival >/dev/null || missing="$$missing festival"; \
	[ -d /usr/share/festival/voices/english/ked_diphone ] || missing="$$missing festvox-kdlpc16k"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v cc >/dev/null || missing="$$missing gcc"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing system packages:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null || \
	    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; }; \
	  elif ! command -v flite >/dev/null; then \
	    echo "error: flite is required: install it (Debian/Ubuntu: sudo apt-get install flite; optional: festival festvox-kdlpc16k for an extra voice, chromium for the browser test, gcc for the bf16-cpu generator)" >&2; exit 1; \
	  else echo "note: optional packages missing:$$missing (extra speaker / browser test / bf16-cpu generator); continuing"; fi; \
	fi

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q '$(TORCH_SPEC)'
	$(PY) -m pip install -q -e '.[train,dev,demo,eval]'
	# The ZeroSpeech ABX reference for the cross-check test, without its torchaudio dependency
	# (torchaudio does not load beside the CPU build of torch 2.13; precomputed features never need it).
	$(PY) -m pip install -q --no-deps 'zerospeech-libriabx2==0.9.8'
	@touch $@

run: setup
	cd egs/mini && ./run.sh

test: setup
	$(PY) -m pytest -q

clean-venv:
	rm -rf $(VENV)
