"""Stylises an image file with an exported style network.

    tfadv-stylize --saved_model=zoo/my_style --content=photo.jpg --style=painting.jpg --output=out.png
    tfadv-stylize --zoo_name=my_style ...          # checksum-verified zoo entry
    tfadv-stylize --zoo_name=style_adain_offline --size=512 ...   # a zoo entry at another image side
"""

from absl import flags

from tfadv import cli

flags.DEFINE_string("saved_model", None, "Exported style SavedModel folder.")
flags.DEFINE_string("zoo_name", None, "Zoo entry of kind 'style' instead of --saved_model.")
flags.DEFINE_string("zoo_dir", None, "Zoo folder (default: $TFADV_ZOO_DIR or the checkout's zoo/).")
flags.DEFINE_string("content", None, "Content image file.")
flags.DEFINE_string("style", None, "Style image file.")
flags.DEFINE_string("output", None, "Output PNG file.")
flags.DEFINE_integer("size", None, "Image side to stylise at (a zoo entry's network rebuilt at that side; a multiple "
                     "of 16). Default: the size the network was exported at.", lower_bound=16)
flags.mark_flags_as_required(["content", "style", "output"])
flags.register_multi_flags_validator(["saved_model", "zoo_name"],
                                     lambda v: bool(v["saved_model"]) != bool(v["zoo_name"]),
                                     message="Give exactly one of --saved_model or --zoo_name.")
FLAGS = flags.FLAGS


def main(argv):
    from tfadv import stylize

    path = stylize.stylize_file(FLAGS.content, FLAGS.style, FLAGS.output, saved_model=FLAGS.saved_model,
                                 zoo_name=FLAGS.zoo_name, zoo_dir=FLAGS.zoo_dir, size=FLAGS.size)
    print(f"wrote {path}")


def run():
    cli.run(main)


if __name__ == "__main__":
    run()
