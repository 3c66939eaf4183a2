# ember: `make demo` runs the whole loop, `make test` runs the test suite.
# Both set everything up first (a .venv with pip; Debian's libusb for open3d); re-running skips what is done.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.ember-installed

export MUJOCO_GL ?= egl
export HF_HUB_OFFLINE ?= 1
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST

.PHONY: setup demo test lint format system-deps clean

setup: $(STAMP)

# pip (not uv/poetry): the local torch store is visible to pip only.
$(STAMP): pyproject.toml | system-deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[ros,dev,distributed,peers]'
	@touch $(STAMP)

system-deps:
	@if ! { ldconfig -p 2>/dev/null || /sbin/ldconfig -p; } | grep -q 'libusb-1.0.so.0'; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian's libusb-1.0-0 (open3d needs it)"; \
	    (apt-get install -y -qq libusb-1.0-0 >/dev/null 2>&1 || \
	     (apt-get update -qq && apt-get install -y -qq libusb-1.0-0 >/dev/null)); \
	  else \
	    echo "open3d needs libusb; run: sudo apt-get install -y libusb-1.0-0   (then re-run make)"; exit 1; \
	  fi; \
	fi

demo: $(STAMP)
	$(BIN)/ember demo $(ARGS)

# -P: the repository root is not on sys.path, so tests import the installed `ember.*` as a user does (never the
# root folders as top-level `policies`, `robots`, ... nor a stale ember.egg-info's metadata).
test: $(STAMP)
	ROS_DOMAIN_ID=$${ROS_DOMAIN_ID:-$$(( $$(od -An -N2 -tu2 /dev/urandom) % 100 + 1 ))} \
	  $(BIN)/python -P -m pytest -q $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean:
	rm -rf $(VENV) outputs .pytest_cache
