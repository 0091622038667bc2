"""Cuts Debian's wallpaper photographs and abstract images into the style-transfer training and held-out folders.

    python tools/style_data.py [--out_dir=data/photos] [--size=256]     # or: make style-data

Needs the Debian packages mate-backgrounds, gnome-backgrounds and ukui-wallpapers (``make style-data`` installs
them as root). Writes content/, style/, heldout_content/, heldout_style/ and MANIFEST.json (each crop's source
file, package and licence); see :mod:`tfadv.data.photos`.
"""

from absl import flags

from tfadv import cli

flags.DEFINE_string("out_dir", "data/photos", "Folder to write the crops and MANIFEST.json to.")
flags.DEFINE_integer("size", 256, "Side of every square crop, in pixels.", lower_bound=16)
FLAGS = flags.FLAGS


def main(argv):
    from tfadv.data import photos

    manifest = photos.prepare(FLAGS.out_dir, FLAGS.size)
    counts = {role: sum(f["file"].startswith(role + "/") for f in manifest["files"]) for role in photos.ROLES}
    print(f"wrote {len(manifest['files'])} crops to {FLAGS.out_dir}: "
          + ", ".join(f"{n} {role}" for role, n in counts.items()) + "; sources and licences in MANIFEST.json")


if __name__ == "__main__":
    cli.run(main)
