# da3_ros developer entry points. Both main targets bootstrap the environment themselves.
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: env test demo bench clean-env

env:
	@bash scripts/bootstrap_env.sh

# The test command of README.md (CI runs it through .ci/run).
test: env
	@bash scripts/run_tests.sh $(PYTEST_ARGS)

# The main job: the demo on the embedded default input (synthetic scene).
demo: env
	@bash scripts/run_demo.sh $(DEMO_ARGS)

bench: env
	$(VENV)/bin/da3-bench --output out/bench.json

clean-env:
	rm -rf $(VENV)
