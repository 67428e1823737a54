# Two commands on a fresh machine: `make run` (the daemon on a local demo set-up) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# What running needs (committer and its dependencies), and on top of it what the tests need.
RUN_STAMP := $(VENV)/.installed-run
STAMP     := $(VENV)/.installed-test
DEMO   := $(CURDIR)/demo
# Where `make run` serves the history pages: loopback only, so they need no token.
HTTP   ?= 127.0.0.1:9464

.PHONY: proto run test lint docs unit integration faults soak bench bench-quick system-deps container-test systemd-test clean
KILLS ?= 20
DURATION ?= 120

# (PYTHONWARNINGS: without setuptools' banner about editable installs, which asks nothing of the user)
$(RUN_STAMP): pyproject.toml
	@echo "committer: installing committer and what it runs on into $(VENV) (once; the tests' tools come with make test)"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --upgrade pip
	@PYTHONWARNINGS=ignore $(BIN)/pip install --quiet -e .
	@touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

system-deps:
	@scripts/system-deps.sh

## run: the daemon in the foreground on ./demo/data, committing into ./demo/git and pushing to ./demo/mirror.git,
## with the history pages on loopback (HTTP=127.0.0.1:9464; `make run HTTP=127.0.0.1:8080` for another port)
run: $(RUN_STAMP)
	@mkdir -p $(DEMO)/data $(DEMO)/git
	@test -d $(DEMO)/mirror.git || git init --quiet --bare --initial-branch=main $(DEMO)/mirror.git
	@echo "committer: watching $(DEMO)/data; edit files there, Ctrl-C to stop."
	@echo "committer: history pages: http://$(HTTP)/"
	@echo "committer: from a shell, in $(DEMO)/data or anywhere while this runs: $(BIN)/committer log"
	@$(BIN)/committer run --data-dir $(DEMO)/data --git-dir $(DEMO)/git/knowledge.git \
		--remote file://$(DEMO)/mirror.git --http $(HTTP) --log-format console

# Two workers (most tests wait on a daemon or git, not on a core), a test module stays on one worker;
# then, alone, what changes something the whole machine shares and the podman builds.
WORKERS ?= 2
PARALLEL := -n $(WORKERS) --dist loadfile

## test: lint, type-check, the manual, and the whole test suite
test: $(STAMP) system-deps lint
	$(BIN)/python -m pytest $(PARALLEL) -m "not serial and not podman"
	$(BIN)/python -m pytest -m "serial or podman"

lint: $(STAMP) docs
	$(BIN)/ruff check committer tests $(wildcard bench)
	$(BIN)/mypy

## docs: the manual under docs/ as a site in ./build/site; a broken link or a page missing from the nav fails
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

unit: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL) -m "not integration and not slow"

integration: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL) -m "integration and not serial"
	$(BIN)/python -m pytest -m "integration and serial"

faults: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL) -m faults

## container-test: the image built with podman (offline: a Debian root and wheels) and run as the sidecar,
## the Kubernetes example played with `podman kube play`, and the deployment files checked offline
container-test: $(STAMP) system-deps
	$(BIN)/python -m pytest tests/deploy/test_image_podman.py tests/deploy/test_kube_podman.py \
		tests/deploy/test_container.py tests/deploy/test_manifests.py tests/deploy/test_links.py

## systemd-test: the units of systemd/ under systemd booted in a podman container, and checked offline
systemd-test: $(STAMP) system-deps
	$(BIN)/python -m pytest tests/deploy/test_systemd_podman.py tests/daemon/test_systemd.py

## soak: the randomized kill test, longer (make soak KILLS=60 DURATION=240)
soak: $(STAMP)
	$(BIN)/python tests/faults/soak.py --kills $(KILLS) --duration $(DURATION)

## bench: the speed figures of the README (several minutes; bench-quick for a smoke run)
bench: $(STAMP) system-deps
	$(BIN)/python bench/bench.py
	$(BIN)/python bench/fleet.py

bench-quick: $(STAMP) system-deps
	$(BIN)/python bench/bench.py --quick
	$(BIN)/python bench/fleet.py --quick

## proto: the fleet's gRPC modules from committer/fleet/fleet.proto (a test checks they match)
proto: $(STAMP)
	cd committer/fleet && ../../$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. \
		--grpc_python_out=. fleet.proto
	sed -i 's/^import fleet_pb2 as fleet__pb2/from committer.fleet import fleet_pb2 as fleet__pb2/' \
		committer/fleet/fleet_pb2_grpc.py

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
