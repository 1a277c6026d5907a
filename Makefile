# FlexiBank: the two commands are `make run` and `make test`.
# Both install what is missing first (Debian packages), so a fresh Debian 12
# machine needs nothing else but this checkout and a Rust toolchain (rustup).

SHELL := /bin/bash
CARGO ?= cargo
SERVER := target/debug/flexibank-server

# Debian packages: PostgreSQL 15 (server, pg_basebackup, pg_rewind,
# pg_walinspect), a C toolchain for crates with C parts (ring), curl for the
# README's examples.
APT_PACKAGES := postgresql-15 postgresql-client-15 build-essential pkg-config curl ca-certificates

.PHONY: help deps build run up down test test-unit clean-test fmt lint

help:
	@echo "make run   - install what is missing, build, start primary+replica, TLS, demo bank, server (Ctrl-C stops all)"
	@echo "make up    - the same in the background; returns once /readyz answers 200 (make down stops it)"
	@echo "make test  - install what is missing and run every test against real PostgreSQL clusters"

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

test: deps
	$(CARGO) test --workspace --no-fail-fast

clean-test:
	rm -rf var/test

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
