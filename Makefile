# Everything a fresh machine needs: `make demo` and `make test` create the virtual environment
# and install the project into it when it is missing or pyproject.toml changed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-zh test lint clean-out bench-env browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sieve build recipes/demo.toml --root out --card-out data_cards/demo
	$(BIN)/sieve train recipes/demo.toml --root out --report-out data_cards/demo_report

# The Chinese recipe end to end (zhwiki, Chinese web pages, ChnSentiCorp, Weibo NER).
demo-zh: $(STAMP)
	$(BIN)/sieve build recipes/zh.toml --root out --card-out data_cards/zh
	$(BIN)/sieve train recipes/zh.toml --root out --report-out data_cards/zh_report

# tests/test_inspect.py opens `sieve inspect`'s page in Debian's Chromium (Playwright drives it)
# and Firefox ESR (puppeteer-core drives it over WebDriver BiDi); nothing downloads a browser.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BROWSER_DIR := tests/browser
browser:
	command -v chromium >/dev/null && command -v firefox-esr >/dev/null && \
	    command -v npm >/dev/null || { $(SUDO) apt-get update -q && \
	    $(SUDO) apt-get install -y -q chromium firefox-esr $$(command -v npm >/dev/null || \
	    echo nodejs npm); }
	test -d $(BROWSER_DIR)/node_modules/puppeteer-core || \
	    (cd $(BROWSER_DIR) && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --quiet)

# Two pytest processes, one per core (CI has two): the suite's wall time about halves.
test: $(STAMP) browser
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --durations=15

lint: $(STAMP)
	$(BIN)/ruff check .

clean-out:
	rm -rf out

# Peers for side-by-side benchmarks live in their own environment (bench/dedup_vs_datatrove.py).
.venv-bench/.installed: Makefile
	test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install --quiet --upgrade pip
	.venv-bench/bin/python -m pip install --quiet 'datatrove[processing]==0.10.1' orjson spacy \
	    resiliparse==2.0.1 fasttext-predict==0.9.2.4 \
	    jieba==0.42.1 sudachipy==0.7.0 sudachidict-core==20261015 kiwipiepy==0.24.1 kiwipiepy_model==0.24.0
	touch .venv-bench/.installed

bench-env: .venv-bench/.installed
