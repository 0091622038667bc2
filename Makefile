# Two entry points (see README.md): `make demo` runs the main job end to end (an attack on a classifier),
# `make test` runs the tests. Both create their own virtual environment and install what they need.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tfadv-installed
FMNIST := /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz

DEMO_ZOO ?= runs/zoo
TARGET ?= fashion_mnist_small_cnn
DEMO_EPOCHS ?= 3
QUICK ?=
ATTACK_FLAGS ?=
EPOCHS ?= $(if $(QUICK),1)
RUN ?= runs/fashion_mnist_cnn$(if $(EPOCHS),_$(EPOCHS)ep)
PYTEST_ARGS ?=
# Tests run in parallel (pytest-xdist), one worker per core up to 4: on CI's 2 cores the default suite took
# 26 minutes in one process; two workers took 10 minutes here. PYTEST_WORKERS=0 runs them in this process.
PYTEST_WORKERS ?= auto --maxprocesses=4

.PHONY: install data style-data stylize demo classifier lint test test-slow clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,eval]'
	touch $@

install: $(STAMP)

# Real Fashion-MNIST from Debian's package: the offline data source on this kind of machine.
data:
	@if [ -f $(FMNIST) ]; then echo "data: Fashion-MNIST IDX files present in $(dir $(FMNIST))"; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
	else echo "data: $(FMNIST) missing; run 'sudo apt-get install dataset-fashion-mnist' or use TFDS online"; fi

# Photographs and styles for style transfer, offline: Debian's wallpaper packages cut into training and held-out
# crops under data/photos (tfadv/data/photos.py lists every file and its licence; MANIFEST.json records them).
STYLE_PACKAGES := mate-backgrounds gnome-backgrounds ukui-wallpapers plasma-workspace-wallpapers
style-data: install
	@if [ -f data/photos/MANIFEST.json ]; then echo "style-data: data/photos present"; \
	else if [ "$$(id -u)" = 0 ]; then apt-get install -y -qq --no-install-recommends $(STYLE_PACKAGES) \
	  || (apt-get update -qq && apt-get install -y -qq --no-install-recommends $(STYLE_PACKAGES)); fi; \
	$(PY) tools/style_data.py --out_dir=data/photos; fi

# Stylise the bundled photograph with the bundled texture by the zoo's trained AdaIN network (no data, no
# download; STYLE_ENTRY=style_gram_stack_offline for the seed's network), its trained weights run at STYLE_SIZE px
# (the network trained at 128 px keeps more of the photograph at 512). Writes runs/stylized.png.
STYLE_ENTRY ?= style_adain_offline
STYLE_SIZE ?= 512
stylize: install
	$(PY) tools/stylize.py --zoo_name=$(STYLE_ENTRY) --content=examples/images/content_ladybird.png \
		--style=examples/images/style_truchet.png --output=runs/stylized.png --size=$(STYLE_SIZE)

# The main job (tools/attack.py): train a U-Net generator attack (thresholded, L2 <= 2.4) against TARGET (a zoo
# classifier, or your own .keras file: [0, 1] images in, logits out) for DEMO_EPOCHS epochs, measure it on the
# full test set beside the clean accuracy and PGD-40 at the same budget on the first 500 images, write a report
# with figures, export the generator to the working zoo $(DEMO_ZOO) and check that copy with tf.saved_model.load.
# QUICK=1: one 200-step epoch without BatchNorm, PGD on 200 images (about 3 minutes). A finished run is reused,
# a killed one resumes.
demo: install data
	$(PY) tools/attack.py --target=$(TARGET) --zoo_dir=$(DEMO_ZOO) \
		$(if $(QUICK),--quick,--set=epochs=$(DEMO_EPOCHS)) $(ATTACK_FLAGS)

# Train the Fashion-MNIST target classifier (or reuse $(RUN) if it finished before; a killed run resumes), evaluate
# it, export it to the working zoo ($(DEMO_ZOO)), check the exported copy with plain tf.saved_model.load, and check
# the committed zoo entry too. EPOCHS=1 (or QUICK=1) is a two-minute version: it says how far it is from the recipe.
classifier: install data
	@if [ -f $(RUN)/metrics.json ]; then echo "classifier: $(RUN) holds a finished run; reusing it (delete to retrain)"; \
	else $(PY) tools/train.py --experiment=fashion_mnist_cnn --workdir=$(RUN) $(if $(EPOCHS),--set=epochs=$(EPOCHS)); fi
	$(PY) tools/evaluate.py --workdir=$(RUN)
	$(PY) tools/export.py --workdir=$(RUN) --name=fashion_mnist_small_cnn --zoo_dir=$(DEMO_ZOO) --overwrite
	$(PY) tools/evaluate.py --zoo_name=fashion_mnist_small_cnn --zoo_dir=$(DEMO_ZOO)
	$(PY) tools/evaluate.py --zoo_name=fashion_mnist_small_cnn
	@$(PY) -c "from tfadv.report import epochs_note; print(epochs_note('$(RUN)', 'fashion_mnist_small_cnn'))"
	@echo "TensorBoard logs: $(RUN)/logs   image grids: $(RUN)/images   working zoo: $(DEMO_ZOO)"

# pyflakes' checks (pyproject.toml [tool.ruff.lint]: unused imports and names, undefined names, redefinitions)
# first: seconds, and they fail fast.
lint: install
	$(PY) -m ruff check tfadv tools tests

test: install data lint
	$(PY) -m pytest -q tests -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

test-slow: install data
	$(PY) -m pytest -q tests --runslow -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
