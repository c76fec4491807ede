# citystream: `make demo` runs the whole system on the embedded broker; `make test` runs lint, types and every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JARS   := deploy/kafka/jars/.fetched

.PHONY: demo test lint typecheck unit integration install native kafka-jars chromium clean

$(STAMP): pyproject.toml
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[embedded,dev]'
	@touch $(STAMP)

install: $(STAMP)

# The synchronous processors compiled with mypyc (processors/native.py): under a minute on 2 cores, again
# whenever a processor changes. The worker loads them only while they match their sources.
NATIVE := processors/_native/manifest.json

$(NATIVE): $(STAMP) $(wildcard processors/*.py processors/*/*.py)
	$(BIN)/citystream native build

native: $(NATIVE)

$(JARS): deploy/kafka/pom.xml
	@command -v java >/dev/null || { echo "Java 17 is needed for the test Kafka: apt-get install openjdk-17-jre-headless"; exit 1; }
	@command -v mvn >/dev/null || { echo "Maven is needed to fetch Kafka: apt-get install maven"; exit 1; }
	@echo "fetching Apache Kafka 4.1.1 jars from Maven Central into deploy/kafka/jars (about 45 MB, once)"
	mvn -q -B -f deploy/kafka/pom.xml dependency:copy-dependencies
	@touch $(JARS)

kafka-jars: $(JARS)

# The dashboard's browser test drives Debian's chromium through playwright (never `playwright install`).
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "Chromium is needed for tests/e2e/test_dashboard.py and apt-get is not available: install the chromium package so that $(CHROMIUM) exists"; exit 1; }
	@echo "installing Debian's chromium for the dashboard's browser test"
	DEBIAN_FRONTEND=noninteractive apt-get install -y chromium || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; } || { echo "apt-get could not install chromium (run as root, or: sudo apt-get install chromium)"; exit 1; }

chromium: $(CHROMIUM)

demo: $(STAMP)
	@$(MAKE) --no-print-directory $(NATIVE) || echo "the compiled processors could not be built (above); the demo runs them as plain Python"
	$(BIN)/citystream demo $(if $(FOR),--for $(FOR),)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

test: $(STAMP) $(JARS) $(CHROMIUM) $(NATIVE) lint typecheck
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) deploy/kafka/jars processors/_native .mypy_cache .ruff_cache .pytest_cache test-output
