# Patchbay: two commands do everything on a fresh Debian machine.
#   make run   installs missing Debian packages, builds in release mode, serves with the embedded defaults
#   make test  installs what the tests need (Debian packages, a Python venv of independent peers), builds, runs every test
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Debian packages: the C libraries we link, and the independent tools the tests cross-check against.
APT_BUILD := pkg-config libwebsockets-dev libwebsockets-evlib-ev libev-dev libopus-dev libcurl4-openssl-dev libssl-dev libspeexdsp-dev libogg-dev libsqlite3-dev
APT_TEST  := opus-tools espeak-ng sox openssl python3-venv
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
VENV := .venv
PYTHON := $(VENV)/bin/python

.PHONY: help run test build release deps test-deps venv clean bench

help:
	@echo "make run    install missing Debian packages, build (release), serve on PATCHBAY_PORT (8080)"
	@echo "make test   install what the tests need, build, run every test"
	@echo "make bench  release-mode benchmarks (see BENCHMARKS.md)"

# Install only what is missing: dpkg-query answers fast, apt-get runs only when something is absent.
define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call apt_install,$(APT_BUILD))

test-deps: deps
	$(call apt_install,$(APT_TEST))
	@$(MAKE) --no-print-directory venv

# Independent protocol peers for the tests (Python websockets, ...), pinned in Tests/requirements.txt.
venv: $(VENV)/.installed
$(VENV)/.installed: Tests/requirements.txt
	@[ -x $(PYTHON) ] || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --disable-pip-version-check -r Tests/requirements.txt
	@touch $@

build: deps
	swift build

release: deps
	swift build -c release

run: release
	.build/release/patchbay serve

# One test at a time: many tests run a whole gateway in the test process, whose async work (HTTP handlers, store
# reads, agent legs) shares one thread pool (as wide as the cores: two here) with every other test, and several tests
# measure a call or a peer against a deadline. Run in parallel, tests that waited for their Python peers on that pool
# starved the gateways the peers were talking to (fixed: TestSupport waits on threads of its own, and `swift test`
# in parallel, 17 s, now passes too), and a loaded machine still moves the deadlines. Serial: 75 s, for CI.
test: test-deps
	swift build --build-tests
	PATCHBAY_TEST_PYTHON=$(CURDIR)/$(PYTHON) swift test --skip-build --no-parallel

bench: deps
	$(call apt_install,wrk util-linux curl)
	$(MAKE) -C Benchmarks all

clean:
	rm -rf .build $(VENV)
