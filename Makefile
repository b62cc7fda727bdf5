# Two commands: `make run` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
# The Python the virtual environment is made with: PYTHON=..., or the newest python3.13 ... python3.10 that
# runs here (with ensurepip, which venv needs), else python3 when it is 3.10 or newer. On a Mac with only the
# command-line tools, python3 is Apple's 3.9, too old.
ifeq ($(origin PYTHON), undefined)
PYTHON := $(shell for p in python3.13 python3.12 python3.11 python3.10 python3; do \
  $$p -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1 && { echo $$p; break; }; done)
endif
NO_PYTHON := tracker needs Python 3.10 or newer, and $(if $(PYTHON),$(PYTHON) is not one,none was found \
  (tried python3.13 ... python3.10 and python3)): install one (on a Mac: brew install python@3.13, or the installer from python.org; on Debian or \
  Ubuntu: apt install python3 python3-venv), or name it with make run PYTHON=/path/to/python3.12
ARGS ?=
# The real peers the tests start for themselves, and what the binary's launcher is compiled with (gcc, zlib1g-dev).
# The Wayland desktops: sway (with foot, wtype, Xwayland), KWin and GNOME Shell, on private D-Bus buses.
# Windows: Wine (64-bit only) runs the Windows embeddable CPython on the Xvfb desktop (tests/helpers/wine.py).
DEBS := influxdb victoria-metrics xvfb openbox xdotool xterm docker-compose tmux prometheus systemd gcc zlib1g-dev \
  sway foot wtype wayland-utils xwayland kwin-wayland qdbus-qt5 mutter gnome-shell dbus-daemon wine wine64

.PHONY: run test install debs lint binary

$(VENV)/.installed: pyproject.toml
	@"$(PYTHON)" -c 'import sys; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1 || \
	  { echo '$(NO_PYTHON)' >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
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
	$(VENV)/bin/lint-imports

# The tests mostly wait (for servers, subprocesses and clocks), so they run in more workers than there are cores;
# each worker starts the shared servers once. The 15 slowest are listed at the end, so growth shows.
TEST_WORKERS ?= 6
# The Debian packages and the virtual environment are installed side by side (-j2): both mostly wait for downloads.
test:
	@$(MAKE) --no-print-directory -j2 --output-sync=target debs $(VENV)/.installed
	@$(MAKE) --no-print-directory lint
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist worksteal --durations=15

# dist/tracker: one executable for this machine's OS and CPU, needing no Python (see README, "One file").
binary: $(VENV)/.installed
	$(PY) packaging/build_binary.py
