"""Measures a zoo style network on held-out images: independent-encoder losses, speed, and a figure grid.

    python tools/evaluate_style.py --zoo_name=style_adain_offline --record --figure=docs/style_adain_offline.png

For every (content, style) pair of the held-out folders (``make style-data`` writes them; no training image is
among them): the content loss and Gram style loss of the output through a random encoder of another seed than the
one the network trained against, beside the same losses of the content image unchanged and of the style image
itself; images per second at 256 and 512 px (the trained weights in the network rebuilt at that size, batch 1,
this machine's CPU); and a content x style grid PNG. --record adds them to the entry's ``style_evaluation``.
"""

from absl import flags

from tfadv import cli

flags.DEFINE_string("zoo_name", None, "Zoo entry of kind 'style'.", required=True)
flags.DEFINE_string("zoo_dir", None, "Zoo folder (default: $TFADV_ZOO_DIR or the checkout's zoo/).")
flags.DEFINE_string("content_dir", "data/photos/heldout_content", "Held-out content images.")
flags.DEFINE_string("style_dir", "data/photos/heldout_style", "Held-out style images.")
flags.DEFINE_list("sizes", ["256", "512"], "Image sides to time.")
flags.DEFINE_integer("repeats", 3, "Timed calls per size.", lower_bound=1)
flags.DEFINE_string("figure", None, "Write the content x style grid to this PNG.")
flags.DEFINE_bool("record", False, "Add the figures to the zoo entry's metrics (style_evaluation).")
FLAGS = flags.FLAGS

PUBLISHED = "AdaIN (Huang & Belongie 2017): 15 fps at 512 x 512 on a Pascal Titan X GPU, full VGG-19 encoder"


def main(argv):
    import json
    import os

    from tfadv import experiments, stylize, zoo
    from tfadv import style_evaluation as se
    from tfadv.data.images import write_png
    from tfadv.errors import ConfigError

    cfg = experiments.from_dict(zoo.entry(FLAGS.zoo_name, FLAGS.zoo_dir)["config"])
    if cfg.encoder == "random_vgg19" and cfg.encoder_kwargs.get("seed", 0) == se.INDEPENDENT_ENCODER["seed"]:
        raise ConfigError(f"{FLAGS.zoo_name} trained against the independent encoder's seed; nothing to measure.")
    serve, size, _loaded = stylize.load_style(zoo_name=FLAGS.zoo_name, zoo_dir=FLAGS.zoo_dir)
    images = se.held_out(FLAGS.content_dir, FLAGS.style_dir, size)
    outputs = se.stylised(serve, images)
    speed = se.images_per_second(lambda side: stylize.at_size(FLAGS.zoo_name, side, FLAGS.zoo_dir),
                                 [int(side) for side in FLAGS.sizes], FLAGS.repeats)
    command = (f"python tools/evaluate_style.py --zoo_name={FLAGS.zoo_name} --record"
               + (f" --figure={FLAGS.figure}" if FLAGS.figure else ""))
    result = {"heldout_losses": se.independent_losses(outputs, images),
              "images_per_second": {**speed, "device": f"this machine's CPU ({os.cpu_count()} cores), batch 1",
                                    "published_reference": PUBLISHED},
              "data": f"{FLAGS.content_dir} x {FLAGS.style_dir} (tools/style_data.py; never trained on)",
              "command": command}
    if FLAGS.figure:
        title = f"{FLAGS.zoo_name}: held-out photographs (rows) x held-out styles (columns), {size} px"
        write_png(FLAGS.figure, se.grid_figure(outputs, images, title))
        print(f"wrote {FLAGS.figure}")
    print(json.dumps(result, indent=2))
    if FLAGS.record:
        zoo.add_metrics(FLAGS.zoo_name, {"style_evaluation": result}, FLAGS.zoo_dir)
        print(f"recorded in {FLAGS.zoo_name}'s metrics.style_evaluation")


if __name__ == "__main__":
    cli.run(main)
