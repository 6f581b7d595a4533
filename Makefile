# The two commands of the README: `make demo` and `make test`. Everything else is a step of them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: help venv demo test chaos unit lint typecheck format browser-deps bench stack-up stack-status stack-down clean

help:
	@echo "make demo   - set up, start the local stack, run the pipeline end to end, stop"
	@echo "make test   - set up, lint, type-check, run the whole test suite on the local stack"
	@echo "make bench  - run the benchmarks (JSON on stdout)"
	@echo "make chaos  - the long fault tests on a three-node Kafka cluster (tens of minutes)"
	@echo "make unit   - only the fast tests that need no stack"

$(STAMP):
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11+"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[local,dev]' > $(VENV)/install.log 2>&1 \
		|| { cat $(VENV)/install.log; exit 1; }
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

demo: venv
	$(BIN)/auditlog demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

unit: venv
	$(BIN)/pytest tests/unit

# Debian's Chromium and ChromeDriver for the viewer page's browser tests (installed as root
# when missing; otherwise it says what to run).
browser-deps:
	@bash tests/stack/browser/ensure_chromium.sh

test: lint typecheck browser-deps
	$(BIN)/pytest

# The fault tests at full length (minute-long outages, more events); `make test` runs their
# short versions. Stall times: printed, and collected in .cache/chaos-report.jsonl.
CHAOS_REPORT := $(CURDIR)/.cache/chaos-report.jsonl
chaos: venv
	@mkdir -p .cache && rm -f $(CHAOS_REPORT)
	AUDITLOG_CHAOS=long AUDITLOG_CHAOS_REPORT=$(CHAOS_REPORT) \
		$(BIN)/pytest tests/stack/cluster -m chaos -s --timeout=1800 --durations=0
	@echo "stall times (s) per fault:" && cat $(CHAOS_REPORT)

bench: venv browser-deps
	$(BIN)/python -m bench.producer_throughput
	$(BIN)/python -m bench.clickhouse_insert
	$(BIN)/python -m bench.avro_insert
	$(BIN)/python -m bench.writer_throughput
	$(BIN)/python -m bench.sink_throughput
	$(BIN)/python -m bench.integrity_throughput
	$(BIN)/python -m bench.tenant_check
	$(BIN)/python -m bench.viewer_queries
	$(BIN)/python -m bench.viewer_page

stack-up: venv
	$(BIN)/auditlog stack up

stack-status: venv
	$(BIN)/auditlog stack status

stack-down: venv
	$(BIN)/auditlog stack down

clean: stack-down
	rm -rf .stack .mypy_cache .ruff_cache .pytest_cache
