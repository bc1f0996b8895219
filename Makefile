# Dispo: two commands to know. `make run` sets up and starts the platform; `make test` sets up and tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test fuzz lint bench eval eval-dev calibrate install chromium clean clean-llama demo help

help:
	@echo "make run    set up (virtualenv, install, migrate) and start Dispo on http://127.0.0.1:8000 (dashboard at /dashboard)"
	@echo "make test   set up and run the test suite (SQLite, plus PostgreSQL where reachable)"
	@echo "make fuzz   schemathesis against the OpenAPI spec, every operation, $(FUZZ_EXAMPLES) examples each"
	@echo "make lint   ruff + mypy"
	@echo "make bench  benchmarks; writes BENCHMARKS.md (BENCH_CALLS=1000000 by default)"
	@echo "make clean-llama  drop the cached llama-cpp-python wheels (~/.cache/dispo/wheels); the next install rebuilds"
	@echo "make demo   start a fresh server, run the Post-Call Analytics page's complete example, stop"
	@echo "make eval   post-call analytics on $(EVAL_DATA): reports in eval-reports/, sections in BENCHMARKS.md (and whole-call latency)"
	@echo "make eval-dev  extraction on the dev set in the repository (src/dispo/evaluation/devset/subject.jsonl)"
	@echo "make calibrate  refit the calibrated confidence on the fit half of $(EVAL_DATA)/extraction.jsonl and the dev set"

$(STAMP): pyproject.toml scripts/llama_wheel.py
	$(PYTHON) -c 'import sys; sys.exit("Dispo needs Python >= 3.11, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# llama.cpp built for this CPU without its AMX path, cached by flags (scripts/llama_wheel.py says why).
	$(BIN)/python scripts/llama_wheel.py install
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	-@$(MAKE) --no-print-directory chromium
	touch $(STAMP)

# The dashboard's browser tests drive Debian's Chromium: installed where this user may (root with
# apt-get); otherwise those tests are skipped and say why (docs/dashboard.md).
chromium:
	@command -v chromium >/dev/null 2>&1 && echo "Chromium: $$(command -v chromium)" || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then apt-get install -y --no-install-recommends chromium; \
	    else echo "Chromium not installed (needs root and apt-get): the dashboard's browser tests will be skipped; install it with 'sudo apt-get install chromium'."; fi; }

install: $(STAMP)

run: $(STAMP)
	$(BIN)/dispo serve

test: $(STAMP)
	$(BIN)/python -m pytest

# The contract test with many more examples per operation than `make test` runs (10).
FUZZ_EXAMPLES ?= 500
fuzz: $(STAMP)
	DISPO_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/test_openapi_contract.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy

demo: $(STAMP)
	$(BIN)/python examples/demo.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks
	$(BIN)/python -m benchmarks.voice --realtime --output BENCHMARKS.md

# Extraction and summaries, the naive baseline first (the engine's report compares with it).
# EVAL_ARGS passes options to every run, e.g. EVAL_ARGS="--limit 20" or "--backend openai".
EVAL_DATA ?= ../shared/eval
EVAL_ARGS ?=
EVAL_OUT  := eval-reports
eval: $(STAMP)
	mkdir -p $(EVAL_OUT)
	$(BIN)/dispo eval $(EVAL_DATA)/extraction.jsonl --strategy naive $(EVAL_ARGS) --report $(EVAL_OUT)/extraction-naive.json
	$(BIN)/dispo eval $(EVAL_DATA)/extraction.jsonl $(EVAL_ARGS) --baseline $(EVAL_OUT)/extraction-naive.json --report $(EVAL_OUT)/extraction-engine.json
	$(BIN)/dispo eval $(EVAL_DATA)/summaries.jsonl --strategy naive $(EVAL_ARGS) --report $(EVAL_OUT)/summaries-naive.json
	$(BIN)/dispo eval $(EVAL_DATA)/summaries.jsonl $(EVAL_ARGS) --baseline $(EVAL_OUT)/summaries-naive.json --report $(EVAL_OUT)/summaries-engine.json
	$(BIN)/python -m benchmarks.analytics $(EVAL_OUT)/extraction-engine.json $(EVAL_OUT)/extraction-naive.json $(EVAL_OUT)/summaries-engine.json $(EVAL_OUT)/summaries-naive.json
	# Metrics and summary together, per call: p50/p95 before and after the shared prefix, 1 and 2 threads.
	$(BIN)/python -m benchmarks.wholecall $(EVAL_DATA)/extraction.jsonl

eval-dev: $(STAMP)
	mkdir -p $(EVAL_OUT)
	$(BIN)/dispo eval src/dispo/evaluation/devset/subject.jsonl $(EVAL_ARGS) --report $(EVAL_OUT)/devset-subject.json

# Refit src/dispo/analytics/calibration.json on the fit half (hash of the dialogue id) of the
# extraction data and the dev set, and report its ECE on the held-out half; commit the JSON it writes.
calibrate: $(STAMP)
	mkdir -p $(EVAL_OUT)
	$(BIN)/dispo eval $(EVAL_DATA)/extraction.jsonl src/dispo/evaluation/devset/subject.jsonl --fit-calibration $(EVAL_ARGS) --report $(EVAL_OUT)/calibration.json

# The cached llama-cpp-python wheels (~/.cache/dispo/wheels) survive `make clean`; this drops them.
clean-llama:
	$(PYTHON) scripts/llama_wheel.py clean
	rm -f $(STAMP)

clean:
	rm -rf $(VENV) dispo-data bench-data eval-reports test-artifacts .pytest_cache .mypy_cache .ruff_cache
