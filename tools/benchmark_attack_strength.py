"""Benchmark: how close a generator (alone and refined by a few PGD steps) gets to AutoAttack, and how fast.

    python tools/benchmark_attack_strength.py --target=fashion_mnist_pgd_defense_linf \
        --generator=fashion_mnist_unet_linf_vs_pgd --num_examples=1000 --refine_steps=1,2,5,10 \
        --pgd_steps=100 --pgd_restarts=2 --autoattack_examples=100 --output=/tmp/strength_linf.json

One run, one table, on the first --num_examples test images (the images the registry's AutoAttack figure used):

* ``generator``: the zoo generator's x_hat (its SavedModel's ``serve``), one forward pass per image;
* ``generator+PGD-k``: tfadv's PGD started from x_hat (``pgd(..., start=x_hat, random_start=False)``) for each
  k of --refine_steps: an input-dependent refinement. Per image the attack returns the refined image if it is
  misclassified, else x_hat (the attacker sees the prediction; AutoAttack keeps successes across its stages
  the same way), so a row is never weaker than the generator on the same images;
* ``PGD-kx1`` (--plain_pgd): the same k steps from a random start instead of x_hat: what the generator adds;
* ``PGD-SxR``: tfadv's PGD from random starts (the registry's PGD column: S steps, R restarts);
* ``AutoAttack``: tfadv.autoattack's standard version (APGD-CE, APGD-T, FAB-T, Square 5000; native TensorFlow),
  run on the first --autoattack_examples images (0: not run). Its full figure on the first 1000 images takes
  tens of minutes on this CPU per robust classifier, so the default runs a subset and the table also quotes the
  recorded standard figure (``recorded``: the registry's ``autoattack`` column, not measured here).

Each row: adversarial accuracy (every returned image is checked inside the budget and [0, 1] before it is
scored with the classifier's ``serve``), the accuracy on the AutoAttack subset (same images for every row),
wall seconds and images/s (the first batch of each attack runs once untimed: tracing is not attack time).
Prints a Markdown table, then the JSON result (also written to --output).
"""

from absl import flags

from tfadv import cli
from tfadv.errors import ConfigError

flags.DEFINE_string("target", None, "Zoo classifier under attack (e.g. fashion_mnist_pgd_defense_linf).", required=True)
flags.DEFINE_string("generator", None, "Zoo perturbation entry attacking --target; its budget is the benchmark's.",
                    required=True)
flags.DEFINE_string("zoo_dir", None, "Zoo folder (default: $TFADV_ZOO_DIR or the checkout's zoo/).")
flags.DEFINE_string("idx_dir", None, "Folder of MNIST-format IDX files (default: tfadv.data's search).")
flags.DEFINE_integer("num_examples", 1000, "Attack the first N test images.", lower_bound=1)
flags.DEFINE_list("refine_steps", ["1", "2", "5", "10"], "PGD steps started from the generator's x_hat, one row each.")
flags.DEFINE_integer("pgd_steps", 100, "Steps of the random-start PGD row.", lower_bound=1)
flags.DEFINE_integer("pgd_restarts", 2, "Restarts of the random-start PGD row.", lower_bound=1)
flags.DEFINE_integer("autoattack_examples", 100, "Run AutoAttack on the first M images (0: skip; M <= N).",
                     lower_bound=0)
flags.DEFINE_bool("plain_pgd", True, "Also run PGD with each --refine_steps from a random start (what x_hat adds).")
flags.DEFINE_enum("refine_loss", "untargeted", ["untargeted", "cw"], "Loss of the k-step PGD runs.")
flags.DEFINE_float("refine_step", None, "Step size of the k-step runs as a multiple of eps (default 2.5 / k).",
                   lower_bound=0.0)
flags.DEFINE_integer("batch_size", 500, "Images per batch of every attack.", lower_bound=1)
flags.DEFINE_string("output", None, "Also write the JSON result to this file.")
FLAGS = flags.FLAGS


def main(argv):
    from tfadv.benchmarks import attack_strength

    try:
        refine_steps = [int(k) for k in FLAGS.refine_steps]
    except ValueError:
        raise ConfigError(f"--refine_steps must be integers. Received: {FLAGS.refine_steps}") from None
    result, printed = attack_strength.zoo_benchmark(
        FLAGS.target, FLAGS.generator, zoo_dir=FLAGS.zoo_dir, idx_dir=FLAGS.idx_dir, num_examples=FLAGS.num_examples,
        autoattack_examples=FLAGS.autoattack_examples, pgd_steps=FLAGS.pgd_steps, pgd_restarts=FLAGS.pgd_restarts,
        refine_steps=refine_steps, batch_size=FLAGS.batch_size, plain_pgd=FLAGS.plain_pgd,
        refine_loss=FLAGS.refine_loss, refine_step=FLAGS.refine_step)
    print(printed)
    cli.print_json(result, FLAGS.output)


if __name__ == "__main__":
    cli.run(main)
