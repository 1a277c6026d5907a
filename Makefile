# FlexiBank: the two commands are `make run` and `make test`.
# Both install what is missing first (Debian packages), so a fresh Debian 12
# machine needs nothing else but this checkout and a Rust toolchain (rustup).

SHELL := /bin/bash
CARGO ?= cargo
SERVER := target/debug/flexibank-server

# Debian packages: PostgreSQL 15 (server, pg_basebackup, pg_rewind,
# pg_walinspect), a C toolchain for crates with C parts (ring), curl for the
# README's examples, a font for the benchmark's chart and the PDF statements,
# pdftotext (poppler-utils) for the statements' test; for the desktop app
# WebKitGTK 4.1 (pulls GTK 3 and libsoup 3), and for its end-to-end tests a
# virtual display, Debian's WebKitWebDriver, xwd + ImageMagick for
# screenshots and dbus-run-session; Python with venv for Schemathesis (the
# OpenAPI conformance test).
APT_PACKAGES := postgresql-15 postgresql-client-15 build-essential pkg-config curl ca-certificates fonts-dejavu-core \
	libwebkit2gtk-4.1-dev xvfb webkit2gtk-driver x11-apps imagemagick dbus python3 python3-venv poppler-utils
DESKTOP_APP := target/debug/flexibank-desktop
TAURI_DRIVER := $(or $(CARGO_HOME),$(HOME)/.cargo)/bin/tauri-driver
# Schemathesis (PyPI, pinned in tests/schemathesis/requirements.txt) in a
# virtual environment of its own; the conformance test runs its `st`.
SCHEMATHESIS_VENV := var/venv/schemathesis
SCHEMATHESIS_STAMP := $(SCHEMATHESIS_VENV)/.installed
SCHEMATHESIS_ENV := FLEXIBANK_SCHEMATHESIS=$(CURDIR)/$(SCHEMATHESIS_VENV)/bin/st
FUZZ_SECONDS ?= 600

.PHONY: help deps frontend build run up down test fuzz screenshots bench bench-failover clean-test fmt lint

help:
	@echo "make run   - install what is missing, build, start primary+replica, TLS, demo bank, server (Ctrl-C stops all)"
	@echo "make up    - the same in the background; returns once /readyz answers 200 (make down stops it)"
	@echo "make test  - install what is missing and run every test against real PostgreSQL clusters"
	@echo "make fuzz  - Schemathesis against the server's OpenAPI, random seed, FUZZ_SECONDS (600) per role"
	@echo "make screenshots - the desktop app's four views into docs/screenshots (end-to-end tests)"
	@echo "make bench - API transfers/s next to pgbench on the same cluster (QUICK=1: 5 s per shape)"
	@echo "make bench-failover - kill the primary under load 5 times; time until writes are accepted again"

deps:
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust with rustup (https://rustup.rs)"; exit 1; }
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@command -v npm >/dev/null || { echo "npm not found: install Node.js 20+ with npm"; exit 1; }

# The web view's code, built into desktop/dist, which the app embeds at
# compile time. `npm ci` only when the lock file changed.
frontend: deps
	@cd desktop && if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then \
	  npm ci --no-audit --no-fund; fi
	cd desktop && npm run build

$(TAURI_DRIVER):
	$(CARGO) install tauri-driver --locked

# pip runs again only when requirements.txt is newer than the stamp.
$(SCHEMATHESIS_STAMP): tests/schemathesis/requirements.txt | deps
	python3 -m venv $(SCHEMATHESIS_VENV)
	$(SCHEMATHESIS_VENV)/bin/pip install -q -r tests/schemathesis/requirements.txt
	touch $@

build: frontend
	$(CARGO) build --workspace --bins

run: build
	$(SERVER) stack run --open-app $(DESKTOP_APP)

up: build
	$(SERVER) stack up

down:
	@if [ -x $(SERVER) ]; then $(SERVER) stack down; else echo "nothing built, nothing to stop"; fi

# The smoke benchmark runs in `make test` for its ledger checks, not its
# timings, on the debug build (no second, release build in CI).
test: frontend $(TAURI_DRIVER) $(SCHEMATHESIS_STAMP)
	cd desktop && npm test
	$(CARGO) build --workspace --bins
	$(SCHEMATHESIS_ENV) $(CARGO) test --workspace --all-targets --no-fail-fast
	target/debug/flexibank-bench --quick --server-bin $(SERVER)

# The conformance test alone, longer and with a seed from the clock (printed,
# to replay a failure: FLEXIBANK_SCHEMATHESIS_SEED=<seed>).
fuzz: frontend $(SCHEMATHESIS_STAMP)
	$(CARGO) build --workspace --bins
	$(SCHEMATHESIS_ENV) FLEXIBANK_SCHEMATHESIS_SEED=random FLEXIBANK_SCHEMATHESIS_SECONDS=$(FUZZ_SECONDS) \
	  $(CARGO) test --workspace --test conformance -- --nocapture

screenshots: frontend $(TAURI_DRIVER)
	$(CARGO) build --workspace --bins
	FLEXIBANK_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(CARGO) test -p flexibank-tests --test desktop_e2e --test desktop_payees --test desktop_limits --test desktop_everyday --test desktop_review

BENCH_FLAGS := $(if $(QUICK),--quick,)

bench: deps
	$(CARGO) build --release --bin flexibank-server --bin flexibank-bench --bin flexibank-switch
	target/release/flexibank-bench $(BENCH_FLAGS) --server-bin target/release/flexibank-server $(BENCH_ARGS)

bench-failover: deps
	$(CARGO) build --release --bin flexibank-server --bin flexibank-bench --bin flexibank-switch
	target/release/flexibank-bench --failover --server-bin target/release/flexibank-server $(BENCH_ARGS)

clean-test:
	@echo "removing var/test and var/bench (stop running tests first)"
	rm -rf var/test var/bench

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
