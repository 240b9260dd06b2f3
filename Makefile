# Two commands do all the set-up: `make run` and `make test`.
# uv comes from PATH, or is bootstrapped with pip into .tools/ on first use.

PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv
# Compile the installed packages' bytecode once, at install: without it, where Python may not
# write its cache (PYTHONDONTWRITEBYTECODE, a read-only image), each dinegraph command compiles
# SQLAlchemy and pydantic afresh, seconds every time (BENCHMARKS.md, CLI start-up).
export UV_COMPILE_BYTECODE := 1

.PHONY: run test lint typecheck schema bench bench-all bench-smoke clean

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

run: .venv/.synced
	.venv/bin/dinegraph migrate
	.venv/bin/dinegraph seed --demo
	.venv/bin/dinegraph serve

# The clients' npm packages (codegen, reference clients, the GraphQL-over-HTTP audit) are
# installed when npm is present; without it those tests skip and say why.
NPM := $(shell command -v npm 2>/dev/null)
CLIENT_PACKAGES := $(if $(NPM),clients/node_modules/.installed)

clients/node_modules/.installed: clients/package.json clients/package-lock.json
	cd clients && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# GraphiQL's browser files, which the server hands out itself in development (offline, no
# CDN), are installed the same way; without npm the page at /graphql says how to get them.
GRAPHIQL_PACKAGES := $(if $(NPM),graphiql/node_modules/.installed)

graphiql/node_modules/.installed: graphiql/package.json graphiql/package-lock.json
	cd graphiql && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

run: $(GRAPHIQL_PACKAGES)

# The staff console (admin/, Vue + Vite) is installed and built the same way and served at
# /admin; without npm that page says how to get it.
ADMIN_BUILD := $(if $(NPM),admin/dist/index.html)
ADMIN_SOURCES := $(shell find admin/src -type f 2>/dev/null) admin/index.html admin/vite.config.ts

admin/node_modules/.installed: admin/package.json admin/package-lock.json
	cd admin && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

admin/dist/index.html: admin/node_modules/.installed $(ADMIN_SOURCES)
	cd admin && npm run build --silent

run: $(ADMIN_BUILD)

# Test files run side by side in TEST_WORKERS processes (pytest-xdist), a file to one worker so
# that its servers and fixtures stay together, in the order they are collected (the end-to-end
# files first, on a demo database other tests have not yet changed, as in one process; each
# worker has its own databases and Redis channels). TEST_WORKERS=0 runs everything in-process.
TEST_WORKERS ?= 2

test: .venv/.synced $(CLIENT_PACKAGES) $(GRAPHIQL_PACKAGES) $(ADMIN_BUILD)
	.venv/bin/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

lint: .venv/.synced
	.venv/bin/ruff check dinegraph tests bench migrations
	.venv/bin/ruff format --check dinegraph tests bench migrations

# Strict over dinegraph, tests and bench: the files are listed in pyproject.toml [tool.mypy].
# With npm, the console's TypeScript too (vue-tsc): Vite's build strips types unchecked.
typecheck: .venv/.synced $(if $(NPM),admin/node_modules/.installed)
	.venv/bin/mypy
	$(if $(NPM),cd admin && npm run typecheck --silent)

schema: .venv/.synced
	.venv/bin/dinegraph export-schema --output schema.graphql

bench: .venv/.synced
	.venv/bin/python bench/menu.py

# Every scenario, one after another, only their JSON lines on stdout (commands and progress
# go to stderr): on SQLite, then on PostgreSQL when BENCH_DATABASE_URL is set
# (postgresql+asyncpg://...; BENCH_REDIS_URL adds Redis to the stock fan-out). Long:
# BENCHMARKS.md lists each scenario's own command, to run one alone.
bench-all: .venv/.synced
	@.venv/bin/python bench/run_all.py

# The same with the smallest sizes each scenario allows: proves they work, measures nothing.
bench-smoke: .venv/.synced
	@.venv/bin/python bench/run_all.py --smoke

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache
