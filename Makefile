# earshot: the two commands a new user types are `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.earshot-installed

.PHONY: help setup build test demo bench bench-unseen clean native-check test-native-c test-aarch64 bench-pi bench-live install uninstall

help:
	@echo "make demo   - listen to a virtual room: catalog, recognition, loudness, MQTT messages shown"
	@echo "make test   - install what is needed and run the whole test suite"
	@echo "make build  - rebuild the C kernels into the virtual environment"
	@echo "make bench  - run the benchmarks (slow; installs the music corpus)"
	@echo "make bench-unseen  - recognition on a hold-out: other music and damages (~10 min; never tune on it)"
	@echo "make test-native-c - build the C kernels (-Werror) and run their C tests natively"
	@echo "make test-aarch64  - the same for aarch64: cross-compiled, run under qemu, compared"
	@echo "make bench-pi      - instructions per second of audio per stage (callgrind), RSS"
	@echo "make bench-live    - the live listener: an hour of music, full speed and real time (~1.5 h)"
	@echo "sudo make install   - install the systemd service (user, /opt/earshot, /etc/earshot, unit)"
	@echo "sudo make uninstall - remove it (keeps catalog and config; PURGE=1 removes them too)"

# System packages (Debian / Raspberry Pi OS), installed when run as root.
setup:
	@bash scripts/setup-system

$(STAMP): pyproject.toml setup.py
	@bash scripts/setup-system
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip 'setuptools>=68' wheel cffi
	$(PIP) install --quiet -e '.[test]'
	@touch $(STAMP)

build: $(STAMP)
	$(PIP) install --quiet --no-build-isolation --no-deps -e .

test: setup $(STAMP) build
	$(PY) -m pytest -q

demo: setup $(STAMP) build
	$(PY) scripts/demo.py

bench: $(STAMP) build
	$(PY) scripts/bench_recognition.py

# A hold-out (scripts/bench_unseen.py): music and damages no other benchmark or study uses,
# to check that a change carries over; never to choose a constant.
bench-unseen: $(STAMP) build
	$(PY) scripts/bench_unseen.py

clean:
	rm -rf build dist *.egg-info daemon/*.egg-info daemon/earshot/_native*.so daemon/earshot/_native.c

# The C kernels' own tests (native/tests): natively, and for aarch64 under qemu-user with
# every figure compared against the native run. setup-system installs the cross compiler
# and qemu when root on a non-arm64 machine.
test-native-c:
	$(MAKE) -C native/tests native

test-aarch64: setup
	$(MAKE) -C native/tests -j2 aarch64

# The Raspberry Pi budget: callgrind instruction counts of the daemon's steady state per
# stage, and resident memory, with a 10-hour catalog (built once under bench-out/).
bench-pi: $(STAMP) build
	$(PY) scripts/bench_instructions.py

# The system service (scripts/install): DESTDIR, PREFIX, SYSCONFDIR, UNITDIR, PYTHON, PURGE
# are passed on from the command line (make exports command-line variables).
install:
	@bash scripts/install

uninstall:
	@bash scripts/install --uninstall

# The live listener (issue 4): an hour of real music with song changes, clean and in a room
# mix, fed at full speed and played in real time into a virtual microphone; CPU per second of
# audio, peak memory with a 10-hour catalog, announcement latency, wrong/missed, overruns.
bench-live: $(STAMP) build
	$(PY) scripts/bench_live.py
