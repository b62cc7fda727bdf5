# Two commands: `make run` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
# The real peers the tests start for themselves.
DEBS := influxdb victoria-metrics xvfb openbox xdotool xterm docker-compose tmux prometheus

.PHONY: run test install debs lint binary

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,prometheus,binary]'
	touch $@

install: $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/tracker run $(ARGS)

debs:
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages the tests need:" $$missing; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: $(VENV)/.installed debs lint
	$(VENV)/bin/pytest

# dist/tracker: one executable for this machine's OS and CPU, needing no Python (see README, "One file").
binary: $(VENV)/.installed
	$(PY) packaging/build_binary.py
