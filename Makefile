# The README's two commands: `make run` and `make test`. Both work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

NODE_STAMP := node_modules/.installed

.PHONY: run test lint typecheck pytest bench soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Node runs the bridge firmware core under the MicroPython WebAssembly port in the tests.
$(NODE_STAMP): package.json package-lock.json
	command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs npm)
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

## run: start the main job on the built-in simulator (Ctrl-C to stop)
run: $(STAMP)
	@d=$${RUN_DIR:-$$(mktemp -d /tmp/injectctl-run.XXXXXX)}; \
	echo "Dashboard on the built-in simulator; record in $$d/injectctl.sqlite"; \
	exec $(BIN)/injectctl serve --sim --db $$d/injectctl.sqlite

## test: lint, type-check and run the whole test suite
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Debian's Chromium, driven by Playwright in the dashboard's browser tests.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# A real Mosquitto for the MQTT tests (each test starts its own on a free port).
MOSQUITTO := /usr/sbin/mosquitto
$(MOSQUITTO):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto
	# the tests start their own brokers; the package's service on 1883 is not needed
	-systemctl disable --now mosquitto 2>/dev/null

# A real Orthanc with its DICOMweb plugin for the imaging tests (each starts its own on free
# ports); poppler renders the case report's PDF to PNG and text in its test.
ORTHANC := /usr/share/orthanc/plugins/libOrthancDicomWeb.so
$(ORTHANC):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq orthanc orthanc-dicomweb
	-systemctl disable --now orthanc 2>/dev/null
	-service orthanc stop 2>/dev/null
PDFTOPPM := /usr/bin/pdftoppm
$(PDFTOPPM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils

# Three passes: tests with no wall-clock deadline side by side on both cores, then the
# real-time ones (devices, servers, a browser) two at a time, then those that need the
# machine to themselves one at a time (tests/conftest.py says why).
pytest: $(STAMP) $(NODE_STAMP) $(CHROMIUM) $(MOSQUITTO) $(ORTHANC) $(PDFTOPPM)
	$(BIN)/pytest -n 2 --dist worksteal -m "not realtime"
	$(BIN)/pytest -n 2 --dist worksteal -m "realtime and not exclusive"
	$(BIN)/pytest -m "realtime and exclusive"

## bench: benchmarks; figures go in docs/performance.md
bench: $(STAMP)
	$(BIN)/python -m bench.ne1000_bench
	$(BIN)/python -m bench.bridge_bench
	$(BIN)/python -m bench.stop_path_bench
	$(BIN)/python -m bench.link_loss_bench
	$(BIN)/python -m bench.telemetry_bench
	$(BIN)/python -m bench.mqtt_bench
	$(BIN)/python -m bench.pressure_limit_bench
	$(BIN)/python -m bench.comb_bench
	$(BIN)/python -m bench.detection_bench

## soak: long sweeps (chaos: kill -9 mid-injection, many runs); figures in docs/reliability.md
soak: $(STAMP)
	$(BIN)/python -m bench.chaos_bench --runs 30
	INJECTCTL_FUZZ_EXAMPLES=300 $(BIN)/pytest -q tests/integration/test_state_fuzz.py --hypothesis-show-statistics
	INJECTCTL_API_FUZZ_EXAMPLES=100 $(BIN)/pytest -q tests/system/test_api_fuzz.py

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .hypothesis
