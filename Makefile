# Everyday commands. `make run` to try the product, `make test` to check it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py

.PHONY: install migrate run worker simulator test bench lint format clean

# These targets are for a developer's machine: Django's debug mode (and its development secret
# key) unless DEBUG is set in the environment. Production runs its own processes with DEBUG off.
migrate run worker: export DEBUG ?= True

# The Python side: all that `make run` needs.
install: $(VENV)/.installed

# axe-core for the accessibility tests (tests/axe.py), at the version package-lock.json pins:
# only `make test` needs Node and npm.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

migrate: install
	$(MANAGE) migrate --noinput

# The web server on 127.0.0.1:8000, a Celery worker, and the Runway simulator when there is no
# RUNWAY_API_KEY; an embedded broker when no Redis answers. Ctrl-C stops them all.
run: migrate
	$(MANAGE) run_local $(ARGS)

worker: install
	$(BIN)/celery -A runway_project worker --loglevel=info

simulator: install
	$(BIN)/python -m runway_simulator

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy runway_project videos api bench harness runway_simulator sharing

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# DATABASE_URL selects the database (SQLite by default); Redis must answer on 127.0.0.1:6379.
# TEST_PROCESSES=0 runs the tests one after another, in this process. TEST_ARGS adds pytest's
# arguments: CI runs the end-to-end tests on PostgreSQL only, TEST_ARGS='-m "not stack"' on SQLite.
TEST_PROCESSES ?= 2
TEST_ARGS ?=
test: lint node_modules/.installed
	$(BIN)/pytest --numprocesses=$(TEST_PROCESSES) --dist=loadfile --no-loadscope-reorder $(TEST_ARGS)

# The benchmarks of docs/PERFORMANCE.md (PostgreSQL and Redis on their local ports); ARGS=--small for a quick run.
bench: install
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache node_modules
