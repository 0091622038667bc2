"""Re-exports zoo entries behind the in-graph input guard, without retraining.

    python tools/reguard.py --name=fashion_mnist_small_cnn [--name=...] [--zoo_dir=zoo]

For entries exported before ``serve`` refused empty, non-finite or out-of-range
batches: the old SavedModel is wrapped behind the same checks new exports carry,
re-measured on the entry's split, and replaced (atomically) only if every figure
equals the registry's. See ``tfadv.export.reguard``.
"""

import json

from absl import flags

from tfadv import cli

flags.DEFINE_multi_string("name", None, "Zoo entry to re-guard (repeatable); targets before the attacks on them.")
flags.DEFINE_string("zoo_dir", None, "Zoo folder (default: $TFADV_ZOO_DIR or the checkout's zoo/).")
flags.DEFINE_string("idx_dir", None, "Override the IDX folder the registry's figures were measured on.")
flags.mark_flags_as_required(["name"])
FLAGS = flags.FLAGS


def main(argv):
    from tfadv import export

    for name in FLAGS.name:
        entry = export.reguard(name, zoo_dir=FLAGS.zoo_dir, idx_dir=FLAGS.idx_dir)
        print(json.dumps({name: {"sha256": entry["sha256"], "reexported": entry["reexported"]}}, indent=2))


if __name__ == "__main__":
    cli.run(main)
