#!/usr/bin/env bash
# Rebuilds the committed Fashion-MNIST zoo entries, in dependency order (classifiers before the attacks on them).
#   tools/build_zoo.sh [ENTRY ...]      default: all; runs go to runs/zoo_build/<entry>, logs beside them
# Each entry: tfadv-train with its named experiment, then tfadv-export --overwrite into zoo/ (atomic; the
# registry's figures are measured on the exported SavedModel). A co_trained defense's export also writes its
# co-trained generator NAME_generator (asking for NAME_generator rebuilds NAME). Then every defense table
# (tools/evaluate_defense.py --record) whose command names a rebuilt entry is measured and recorded again, and
# so is every column other tools added to a rebuilt entry (AutoAttack, training cost, security curve:
# tfadv.zoo.other_tools_commands, read before the export replaces the entry) and every table of another entry
# with a column of a rebuilt one (transfer tables, defense tables' transfer columns: tfadv.zoo.tables_measuring).
# Entries trained to attack a rebuilt classifier are rebuilt after it (tfadv.zoo.entries_trained_against).
# tests/test_zoo_registry.py checks that this covers every Fashion-MNIST entry and every recorded table.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RUNS=${RUNS:-runs/zoo_build}
declare -A EXPERIMENT=(
  [fashion_mnist_small_cnn]=fashion_mnist_cnn
  [fashion_mnist_cnn_gap]=fashion_mnist_cnn_gap
  # the transfer zoo: classifiers of other families
  [fashion_mnist_mlp]=fashion_mnist_mlp
  [fashion_mnist_cnn_wide]=fashion_mnist_cnn_wide
  [fashion_mnist_mixer]=fashion_mnist_mixer
  [fashion_mnist_resnet20]=fashion_mnist_resnet20
  # transfer generators (their transfer tables rerun after them: tfadv.zoo.other_tools_commands)
  [fashion_mnist_transfer_gap]=fashion_mnist_transfer_gap
  [fashion_mnist_transfer_cda]=fashion_mnist_transfer_cda
  [fashion_mnist_transfer_ltp]=fashion_mnist_transfer_ltp
  [fashion_mnist_transfer_cda_ensemble]=fashion_mnist_transfer_cda_ensemble
  [fashion_mnist_transfer_cda_l2]=fashion_mnist_transfer_cda_l2
  [fashion_mnist_transfer_targeted]=fashion_mnist_transfer_targeted
  [fashion_mnist_unet_l2]=fashion_mnist_unet_l2
  [fashion_mnist_unet_joint]=fashion_mnist_unet_joint
  [fashion_mnist_autoencoder_l2]=fashion_mnist_autoencoder_l2
  [fashion_mnist_universal_l2]=fashion_mnist_universal_l2
  [fashion_mnist_universal_linf]=fashion_mnist_universal_linf
  [fashion_mnist_joint_defense_linf]=fashion_mnist_joint_defense_linf
  [fashion_mnist_pgd_defense_linf]=fashion_mnist_pgd_defense_linf
  [fashion_mnist_madry_pgd_defense_linf]=fashion_mnist_madry_pgd_defense_linf
  [fashion_mnist_joint_refined_defense_linf]=fashion_mnist_joint_refined_defense_linf
  [fashion_mnist_joint_defense_l2]=fashion_mnist_joint_defense_l2
  [fashion_mnist_pgd_defense_l2]=fashion_mnist_pgd_defense_l2
  [fashion_mnist_unet_linf_vs_pgd]=fashion_mnist_unet_linf_vs_pgd
  [fashion_mnist_unet_l2_vs_pgd]=fashion_mnist_unet_l2_vs_pgd
  [fashion_mnist_unet_gan_l2]=fashion_mnist_unet_gan_l2
  [fashion_mnist_unet_gan]=fashion_mnist_unet_gan
  [fashion_mnist_fgsm_defense_linf]=fashion_mnist_fgsm_defense_linf
  [fashion_mnist_joint_fgsm_defense_linf]=fashion_mnist_joint_fgsm_defense_linf
  [fashion_mnist_trades_defense_linf]=fashion_mnist_trades_defense_linf
  [fashion_mnist_pgd2_defense_linf]=fashion_mnist_pgd2_defense_linf
  [fashion_mnist_pgd3_defense_linf]=fashion_mnist_pgd3_defense_linf
  [fashion_mnist_joint_pgd2_defense_linf]=fashion_mnist_joint_pgd2_defense_linf
  # the style networks train on data/photos: run `make style-data` first
  [style_gram_stack_offline]=style_gram_stack_offline
  [style_adain_offline]=style_adain_offline
)
ORDER=(fashion_mnist_small_cnn fashion_mnist_cnn_gap fashion_mnist_mlp fashion_mnist_cnn_wide fashion_mnist_mixer
       fashion_mnist_resnet20 fashion_mnist_transfer_gap fashion_mnist_transfer_cda fashion_mnist_transfer_ltp
       fashion_mnist_transfer_cda_ensemble fashion_mnist_transfer_cda_l2 fashion_mnist_transfer_targeted
       fashion_mnist_unet_l2 fashion_mnist_unet_joint
       fashion_mnist_autoencoder_l2 fashion_mnist_universal_l2 fashion_mnist_universal_linf
       fashion_mnist_joint_defense_linf fashion_mnist_pgd_defense_linf fashion_mnist_madry_pgd_defense_linf
       fashion_mnist_joint_refined_defense_linf
       fashion_mnist_joint_defense_l2 fashion_mnist_pgd_defense_l2
       fashion_mnist_fgsm_defense_linf fashion_mnist_trades_defense_linf fashion_mnist_joint_fgsm_defense_linf
       fashion_mnist_pgd2_defense_linf fashion_mnist_pgd3_defense_linf fashion_mnist_joint_pgd2_defense_linf
       fashion_mnist_unet_gan_l2 fashion_mnist_unet_gan
       fashion_mnist_unet_linf_vs_pgd fashion_mnist_unet_l2_vs_pgd
       style_gram_stack_offline style_adain_offline)  # the two _vs_pgd entries attack the PGD-trained ones
# The defense tables, as recorded in the registry (the last one recorded for a classifier is the one kept).
TABLES=(
  "tools/evaluate_defense.py --defended=fashion_mnist_joint_defense_linf,fashion_mnist_pgd_defense_linf --undefended=fashion_mnist_small_cnn --norm=linf --eps=0.1 --pgd_steps=100 --pgd_restarts=2 --pgd_examples=1000 --fresh_epochs=2 --record"
  "tools/evaluate_defense.py --defended=fashion_mnist_joint_refined_defense_linf --undefended=fashion_mnist_small_cnn --norm=linf --eps=0.1 --pgd_steps=100 --pgd_restarts=2 --pgd_examples=1000 --fresh_epochs=2 --record"
  "tools/evaluate_defense.py --defended=fashion_mnist_fgsm_defense_linf --undefended=fashion_mnist_small_cnn --norm=linf --eps=0.1 --pgd_steps=100 --pgd_restarts=2 --pgd_examples=1000 --fresh_epochs=2 --record --verbose=0"
  "tools/evaluate_defense.py --defended=fashion_mnist_joint_fgsm_defense_linf,fashion_mnist_trades_defense_linf --undefended=fashion_mnist_small_cnn --norm=linf --eps=0.1 --pgd_steps=100 --pgd_restarts=2 --pgd_examples=1000 --fresh_epochs=2 --nobaseline_row --record --verbose=0"
  "tools/evaluate_defense.py --defended=fashion_mnist_pgd2_defense_linf,fashion_mnist_pgd3_defense_linf,fashion_mnist_joint_pgd2_defense_linf --undefended=fashion_mnist_small_cnn --norm=linf --eps=0.1 --pgd_steps=100 --pgd_restarts=2 --pgd_examples=1000 --fresh_epochs=2 --nobaseline_row --record --verbose=0"
  "tools/evaluate_defense.py --defended=fashion_mnist_madry_pgd_defense_linf --undefended=fashion_mnist_small_cnn --norm=linf --eps=0.1 --pgd_steps=100 --pgd_restarts=2 --pgd_examples=1000 --fresh_epochs=2 --nobaseline_row --record --verbose=0"
  "tools/evaluate_defense.py --defended=fashion_mnist_joint_defense_l2,fashion_mnist_pgd_defense_l2 --undefended=fashion_mnist_small_cnn --norm=l2 --eps=1.5 --pgd_steps=100 --pgd_restarts=2 --pgd_examples=1000 --fresh_epochs=2 --record"
)
entries=()
for name in "${@:-${ORDER[@]}}"; do
  if [[ -z ${EXPERIMENT[$name]:-} && -n ${EXPERIMENT[${name%_generator}]:-} ]]; then name=${name%_generator}; fi
  : "${EXPERIMENT[$name]:?unknown entry $name}"
  entries+=("$name")
done
# An entry trained to attack a rebuilt classifier (tfadv.zoo.entries_trained_against) is retrained too, and so
# on down the chain: its figures are of the old model otherwise.
also=$($PY -c "
import sys
from tfadv import zoo
todo, seen = sys.argv[1:], set(sys.argv[1:])
while todo:
    for name in zoo.entries_trained_against(todo.pop()):
        if name not in seen:
            seen.add(name)
            todo.append(name)
            print(name)" "${entries[@]}")
for name in $also; do
  : "${EXPERIMENT[$name]:?$name was trained against an entry being rebuilt, and this script does not build it}"
  echo "== also $name: it was trained against an entry being rebuilt"
  entries+=("$name")
done
mkdir -p "$RUNS"
rebuilt=()
declare -A OTHER=()
for name in "${ORDER[@]}"; do  # dependency order, whatever order the arguments came in
  [[ " ${entries[*]} " == *" $name "* ]] || continue
  experiment=${EXPERIMENT[$name]}
  echo "== $name ($experiment)"
  # its own columns and other entries' tables with a column of it (or of its co-trained generator)
  OTHER[$name]=$($PY -c "from tfadv import zoo; print('\n'.join(zoo.other_tools_commands('$name') + [
    c for n in ('$name', '${name}_generator') for c in zoo.tables_measuring(n)]))")
  rm -rf "${RUNS:?}/$name"
  $PY tools/train.py --experiment="$experiment" --workdir="$RUNS/$name" > "$RUNS/$name.log" 2>&1
  $PY tools/export.py --workdir="$RUNS/$name" --name="$name" --overwrite >> "$RUNS/$name.log" 2>&1
  grep -m4 -E '"(accuracy|adv_accuracy|l2_mean|fooling_rate)"' "$RUNS/$name.log" || true
  rebuilt+=("$name")
done
declare -A RAN=()  # each command once, however many rebuilt entries it measures
for table in "${TABLES[@]}"; do
  for name in "${rebuilt[@]}"; do
    if [[ $table == *"=$name "* || $table == *"=$name,"* || $table == *",$name "* ]]; then
      echo "== defense table: $table"
      $PY $table
      RAN["python $table"]=1
      break
    fi
  done
done
for name in "${rebuilt[@]}"; do
  while IFS= read -r command; do
    [[ -n $command && -z ${RAN[$command]:-} ]] || continue
    echo "== $name: ${command}"
    ${command/#python/$PY}
    RAN[$command]=1
  done <<< "${OTHER[$name]}"
done
