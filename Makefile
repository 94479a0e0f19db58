# Set-up is two commands: `make run` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# make test also installs the optional backends (JAX, PyTorch: CPU builds, constraints/test.txt) and Ray.
TEST_EXTRAS := test,ray,jax,torch

.PHONY: install run test bench clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): $(BIN)/python pyproject.toml constraints/test.txt
	$(BIN)/python -m pip install --quiet -e '.[$(TEST_EXTRAS)]' -c constraints/test.txt
	touch $(STAMP) $(TEST_STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/psyk train
	$(BIN)/psyk list-experiments
	$(BIN)/psyk report performance

# The results-page test opens the page in headless Chromium: Debian's chromium package, installed
# here when missing on a machine with apt-get (as root or through sudo); elsewhere the test skips.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    echo "installing chromium for the browser test (apt-get)"; \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null \
	      || { $$SUDO apt-get update -qq >/dev/null && $$SUDO env DEBIAN_FRONTEND=noninteractive \
	           apt-get install -y --no-install-recommends chromium >/dev/null; } \
	      || echo "could not install chromium: the browser test will be skipped"; \
	  else echo "no chromium and no apt-get: the browser test will be skipped"; fi; }

# The whole suite on TensorFlow, then the tests marked `backends` on JAX and on PyTorch.
test: $(TEST_STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q
	KERAS_BACKEND=jax $(BIN)/python -m pytest -q -m backends
	KERAS_BACKEND=torch $(BIN)/python -m pytest -q -m backends

bench: $(TEST_STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info
