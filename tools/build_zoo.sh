#!/usr/bin/env bash
# Rebuilds the committed Fashion-MNIST zoo entries, in dependency order (classifiers before the attacks on them).
#   tools/build_zoo.sh [ENTRY ...]      default: all; runs go to runs/zoo_build/<entry>, logs beside them
# Each entry: tfadv-train with its named experiment, then tfadv-export --overwrite into zoo/ (atomic; the
# registry's figures are measured on the exported SavedModel).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RUNS=${RUNS:-runs/zoo_build}
declare -A EXPERIMENT=(
  [fashion_mnist_small_cnn]=fashion_mnist_cnn
  [fashion_mnist_cnn_gap]=fashion_mnist_cnn_gap
  [fashion_mnist_unet_l2]=fashion_mnist_unet_l2
  [fashion_mnist_unet_joint]=fashion_mnist_unet_joint
  [fashion_mnist_autoencoder_l2]=fashion_mnist_autoencoder_l2
  [fashion_mnist_universal_l2]=fashion_mnist_universal_l2
  [fashion_mnist_universal_linf]=fashion_mnist_universal_linf
)
ORDER=(fashion_mnist_small_cnn fashion_mnist_cnn_gap fashion_mnist_unet_l2 fashion_mnist_unet_joint
       fashion_mnist_autoencoder_l2 fashion_mnist_universal_l2 fashion_mnist_universal_linf)
entries=("${@:-${ORDER[@]}}")
mkdir -p "$RUNS"
for name in "${entries[@]}"; do
  experiment=${EXPERIMENT[$name]:?unknown entry $name}
  echo "== $name ($experiment)"
  rm -rf "${RUNS:?}/$name"
  $PY tools/train.py --experiment="$experiment" --workdir="$RUNS/$name" > "$RUNS/$name.log" 2>&1
  $PY tools/export.py --workdir="$RUNS/$name" --name="$name" --overwrite >> "$RUNS/$name.log" 2>&1
  grep -E '"(accuracy|adv_accuracy|l2_mean|fooling_rate)"' "$RUNS/$name.log" | head -4
done
