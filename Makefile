# da3_ros developer entry points. Both main targets bootstrap the environment themselves.
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: env test test-unit test-ros lint demo bench clean-env

env:
	@bash scripts/bootstrap_env.sh

# The test command of README.md (CI runs it through .ci/run).
test: env
	@bash scripts/run_tests.sh $(PYTEST_ARGS)

# The ROS-free unit tests only (the DDS modules are not even imported; see test/conftest.py).
test-unit: env
	@bash scripts/run_tests.sh -m "not ros" $(PYTEST_ARGS)

# The DDS tests only: node processes, rclpy contexts, topics between processes.
test-ros: env
	@bash scripts/run_tests.sh -m ros $(PYTEST_ARGS)

# flake8 and pep257 (the ament linters of package.xml), configured in setup.cfg.
lint: env
	@bash scripts/run_tests.sh -m linter $(PYTEST_ARGS)

# The main job: the demo on the embedded default input (synthetic scene).
demo: env
	@bash scripts/run_demo.sh $(DEMO_ARGS)

bench: env
	$(VENV)/bin/da3-bench --output out/bench.json

clean-env:
	rm -rf $(VENV)
