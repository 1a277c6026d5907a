# FlexiBank: the two commands are `make run` and `make test`.
# Both install what is missing first (Debian packages), so a fresh Debian 12
# machine needs nothing else but this checkout and a Rust toolchain (rustup).

SHELL := /bin/bash
CARGO ?= cargo
SERVER := target/debug/flexibank-server

# Debian packages: PostgreSQL 15 (server, pg_basebackup, pg_rewind,
# pg_walinspect), a C toolchain for crates with C parts (ring), curl for the
# README's examples, a font for the benchmark's chart.
APT_PACKAGES := postgresql-15 postgresql-client-15 build-essential pkg-config curl ca-certificates fonts-dejavu-core

.PHONY: help deps build run up down test bench bench-failover clean-test fmt lint

help:
	@echo "make run   - install what is missing, build, start primary+replica, TLS, demo bank, server (Ctrl-C stops all)"
	@echo "make up    - the same in the background; returns once /readyz answers 200 (make down stops it)"
	@echo "make test  - install what is missing and run every test against real PostgreSQL clusters"
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

build: deps
	$(CARGO) build --workspace --bins

run: build
	$(SERVER) stack run

up: build
	$(SERVER) stack up

down:
	@if [ -x $(SERVER) ]; then $(SERVER) stack down; else echo "nothing built, nothing to stop"; fi

# The smoke benchmark runs in `make test` for its ledger checks, not its
# timings, on the debug build (no second, release build in CI).
test: deps
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --all-targets --no-fail-fast
	target/debug/flexibank-bench --quick --server-bin $(SERVER)

BENCH_FLAGS := $(if $(QUICK),--quick,)

bench: deps
	$(CARGO) build --release --bin flexibank-server --bin flexibank-bench
	target/release/flexibank-bench $(BENCH_FLAGS) --server-bin target/release/flexibank-server $(BENCH_ARGS)

bench-failover: deps
	$(CARGO) build --release --bin flexibank-server --bin flexibank-bench
	target/release/flexibank-bench --failover --server-bin target/release/flexibank-server $(BENCH_ARGS)

clean-test:
	@echo "removing var/test and var/bench (stop running tests first)"
	rm -rf var/test var/bench

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
