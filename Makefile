# Two entry points (see README.md): `make demo` runs the main job end to end, `make test` runs the tests.
# Both create their own virtual environment and install what they need.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tfadv-installed
FMNIST := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz

RUN ?= runs/fashion_mnist_cnn$(if $(EPOCHS),_$(EPOCHS)ep)
DEMO_ZOO ?= runs/zoo
EPOCHS ?=
PYTEST_ARGS ?=

.PHONY: install data demo test test-slow clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(STAMP)

# Real Fashion-MNIST from Debian's package: the offline data source on this kind of machine.
data:
	@if [ -f $(FMNIST) ]; then echo "data: Fashion-MNIST IDX files present in $(dir $(FMNIST))"; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
	else echo "data: $(FMNIST) missing; run 'sudo apt-get install dataset-fashion-mnist' or use TFDS online"; fi

# Train the Fashion-MNIST target classifier (or reuse $(RUN) if it finished before; a killed run resumes), evaluate
# it, export it to a working zoo ($(DEMO_ZOO)), check the exported copy with plain tf.saved_model.load, and check
# the committed zoo entry too.
demo: install data
	@if [ -f $(RUN)/metrics.json ]; then echo "demo: $(RUN) holds a finished run; reusing it (delete it to retrain)"; \
	else $(PY) tools/train.py --experiment=fashion_mnist_cnn --workdir=$(RUN) $(if $(EPOCHS),--set=epochs=$(EPOCHS)); fi
	$(PY) tools/evaluate.py --workdir=$(RUN)
	$(PY) tools/export.py --workdir=$(RUN) --name=fashion_mnist_small_cnn --zoo_dir=$(DEMO_ZOO) --overwrite
	$(PY) tools/evaluate.py --zoo_name=fashion_mnist_small_cnn --zoo_dir=$(DEMO_ZOO)
	$(PY) tools/evaluate.py --zoo_name=fashion_mnist_small_cnn
	@echo "TensorBoard logs: $(RUN)/logs   image grids: $(RUN)/images   working zoo: $(DEMO_ZOO)"

test: install data
	$(PY) -m pytest -q tests $(PYTEST_ARGS)

test-slow: install data
	$(PY) -m pytest -q tests --runslow $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
