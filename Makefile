# Two commands do all set-up on a fresh machine:
#   make run   - create .venv, install, index corpus/ if missing or stale, start the app
#   make test  - same set-up, then the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
RAG    := $(VENV)/bin/rag
STAMP  := $(VENV)/.installed
# Every package at the exact version CI tested (pip-compile output; `make lock` regenerates it).
LOCK   := requirements.lock
# torch: the local CPU build (a multi-GB CUDA build otherwise); llama-cpp-python: built from
# source by scripts/install-llama-cpp.sh. The lock must pin the same versions (scripts/check_lock.py).
TORCH_VERSION     := 2.13.0
LLAMA_CPP_VERSION := 0.3.36
CHECK_LOCK = scripts/check_lock.py --pin torch==$(TORCH_VERSION) --pin llama-cpp-python==$(LLAMA_CPP_VERSION)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install lock check-lock run index lint test test-fast browser-deps bench eval eval-same-period eval-full clean help

help:
	@echo "make run    - set up, index corpus/, start the chat at http://127.0.0.1:7860"
	@echo "make test   - set up, lint, then run the whole test suite"
	@echo "make lint   - requirements.lock vs pyproject.toml, ruff (lint + format check), mypy over rag/"
	@echo "make lock   - regenerate requirements.lock after changing dependencies in pyproject.toml"
	@echo "make bench  - run the benchmark scripts (numbers saved under benchmarks/results/)"
	@echo "make eval   - score the seed suite (extractive) and realtimeqa-dev retrieval (reports/)"
	@echo "make eval-full - the same with the bundled LLM and the tutorial baseline (slow)"
	@echo "make eval-same-period - build the same-period unanswerable suite and score it (extractive)"

$(STAMP): pyproject.toml $(LOCK) scripts/install-llama-cpp.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip wheel setuptools
	$(PY) $(CHECK_LOCK)
	# The CPU build of torch first and explicitly: left to itself pip may pull a CUDA build.
	$(PY) -m pip install -q -c $(LOCK) torch==$(TORCH_VERSION)
	# llama-cpp-python from source with run-time CPU dispatch (cached wheel after the first build).
	LLAMA_CPP_VERSION=$(LLAMA_CPP_VERSION) bash scripts/install-llama-cpp.sh $(PY)
	# Everything else at exactly the versions in the lock.
	$(PY) -m pip install -q -c $(LOCK) -e '.[all,test]'
	touch $(STAMP)

install: $(STAMP)

# Regenerate $(LOCK) from pyproject.toml (extras all and test, what `make` installs) with
# pip-tools in a venv of its own. Pins already in the lock are kept where pyproject still allows
# them; `make lock UPGRADE=1` moves every package to its newest allowed version.
LOCK_TOOLS := $(VENV)/lock-tools
lock:
	test -x $(LOCK_TOOLS)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_TOOLS) && \
		$(LOCK_TOOLS)/bin/pip install -q --upgrade pip 'pip-tools==7.7.0'; }
	printf 'torch==%s\nllama-cpp-python==%s\n' $(TORCH_VERSION) $(LLAMA_CPP_VERSION) >$(LOCK_TOOLS)/constraints.txt
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_TOOLS)/bin/pip-compile --quiet $(if $(UPGRADE),--upgrade) \
		--extra all --extra test --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links \
		--constraint $(LOCK_TOOLS)/constraints.txt --output-file $(LOCK) pyproject.toml
	# pip-compile lists the project itself (its extras refer to it) by its absolute path: drop it.
	awk '/^article-rag @ /{skip=1; next} skip && /^ /{next} {skip=0; print}' $(LOCK) >$(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)
	$(PYTHON) $(CHECK_LOCK)

check-lock:
	$(PYTHON) $(CHECK_LOCK)

index: install
	$(RAG) ingest corpus/

run: index
	@if $(PY) -c "import gradio" 2>/dev/null && $(RAG) serve --help >/dev/null 2>&1; then \
		$(RAG) serve; \
	else \
		echo 'Index ready. Ask a question with: .venv/bin/rag ask "How many KFOR troops are there?"'; \
	fi

browser-deps:
	@test -x /usr/bin/chromium || { \
		echo "Installing Debian's chromium for the browser tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
		|| echo "warning: could not install chromium; browser tests will be skipped"; }

LINT_PATHS := rag tests benchmarks app.py

lint: install
	$(PY) $(CHECK_LOCK)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy rag

test: install browser-deps lint
	$(PY) -m pytest

test-fast: install lint
	$(PY) -m pytest -m "not integration and not llm and not browser"

bench: install
	$(PY) benchmarks/run_all.py

eval: install
	$(RAG) eval evals/seed --llm extractive --out reports/seed-extractive
	$(RAG) eval ../shared/datasets/realtimeqa-dev --retrieval-only --baseline tutorial --out reports/realtimeqa-dev-retrieval

# A same-period unanswerable suite built from ../shared/datasets/realtimeqa-dev (answers removed
# from the corpus, question dates kept; written under .rag/suites/, never into the repository).
SAME_PERIOD := .rag/suites/realtimeqa-same-period
eval-same-period: install
	$(PY) evals/make_same_period.py --out $(SAME_PERIOD)
	@test -f $(SAME_PERIOD)/qa.jsonl || { echo "no shared dataset: skipped"; exit 0; }; \
		$(RAG) eval $(SAME_PERIOD) --llm extractive --out reports/realtimeqa-same-period-extractive

eval-full: install
	$(RAG) eval evals/seed --baseline tutorial --out reports/seed-bundled
	$(RAG) eval ../shared/datasets/realtimeqa-dev --baseline tutorial --out reports/realtimeqa-dev

clean:
	rm -rf $(VENV) .rag .pytest_cache
