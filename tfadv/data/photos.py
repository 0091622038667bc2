"""Real photographs and styles for style transfer, offline: Debian's wallpaper packages.

No COCO or WikiArt can be downloaded on an offline machine, but Debian ships
photographs and abstract art as desktop wallpapers. :func:`prepare` cuts the
files listed in :data:`SOURCES` into square crops (PNG) under four folders:

- ``content/``: photographs to train on (MATE's nature photographs and KDE
  Plasma's photographs, GPL-2+);
- ``style/``: textures and abstract images to train on (GNOME's textures,
  MATE's and Plasma's abstract images, GPL-2+; Ubuntu Kylin's abstract images,
  CC-BY-SA-3.0);
- ``heldout_content/`` and ``heldout_style/``: images never trained on, for
  figures and measurements;

and writes ``MANIFEST.json``: every crop with its source file, package and
licence. Each source is cut at two scales (the whole short side, and a third
of it at three places), so a few dozen wallpapers give a few hundred crops.
The files are read with Pillow (a dependency: it also draws the figures' text), which also
decodes GNOME's WebP textures that ``tf.io.decode_image`` cannot.
"""

import dataclasses
import json
import os

from tfadv.errors import DataUnavailableError

PACKAGES = ("mate-backgrounds", "gnome-backgrounds", "ukui-wallpapers", "plasma-workspace-wallpapers")
# As each package's /usr/share/doc/<package>/copyright states. gnome-backgrounds' copyright file names CC-BY-SA
# photographs but not the .webp textures used here, which fall under the package's own GPL-2+.
LICENCES = {"mate-backgrounds": "GPL-2+", "gnome-backgrounds": "GPL-2+", "ukui-wallpapers": "CC-BY-SA-3.0",
            "plasma-workspace-wallpapers": "GPL-2+"}
_ROOT = "/usr/share"


@dataclasses.dataclass(frozen=True)
class Source:
    path: str  # under /usr/share: a file, or a Plasma wallpaper folder (its largest image is used)
    package: str
    role: str  # content | style | heldout_content | heldout_style


def _sources(package, role, *paths):
    return [Source(p, package, role) for p in paths]


SOURCES = (
    _sources("mate-backgrounds", "content", *(f"backgrounds/mate/nature/{n}.jpg" for n in (
        "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "RainDrops", "Wood", "YellowFlower")))
    + _sources("plasma-workspace-wallpapers", "content", *(f"wallpapers/{n}" for n in (
        "BytheWater", "ColdRipple", "DarkestHour", "FallenLeaf", "Grey", "Kite", "OneStandsOut", "Path", "Volna",
        "summer_1am")))
    + _sources("mate-backgrounds", "heldout_content", "backgrounds/mate/nature/LadyBird.jpg",
               "backgrounds/mate/nature/Storm.jpg")
    + _sources("plasma-workspace-wallpapers", "heldout_content", "wallpapers/EveningGlow")
    + _sources("gnome-backgrounds", "style", *(f"backgrounds/gnome/{n}.webp" for n in (
        "grid-d", "grid-l", "licorice-d", "licorice-l", "truchet-d", "wood-d", "wood-l", "adwaita-l")))
    + _sources("mate-backgrounds", "style", "backgrounds/mate/abstract/Gulp.png",
               "backgrounds/mate/desktop/GreenTraditional.jpg")
    + _sources("ukui-wallpapers", "style", *(f"backgrounds/{n}" for n in (
        "2004default.jpg", "fluent-color.png", "rhythm.jpg", "string.jpg")))
    + _sources("plasma-workspace-wallpapers", "style", *(f"wallpapers/{n}" for n in (
        "ColorfulCups", "Honeywave", "Flow", "Cascade")))
    + _sources("gnome-backgrounds", "heldout_style", "backgrounds/gnome/truchet-l.webp")
    + _sources("mate-backgrounds", "heldout_style", "backgrounds/mate/abstract/Elephants.jpg")
    + _sources("plasma-workspace-wallpapers", "heldout_style", "wallpapers/Autumn")
)
ROLES = ("content", "style", "heldout_content", "heldout_style")


def _crops(image, size: int):
    """Square crops of a PIL image, each resized to ``size``: the centred full-height square, and three
    squares of a third of the short side (left, centre, right along the long axis, at mid-height)."""
    from PIL import Image

    width, height = image.size
    side = min(width, height)
    boxes = [((width - side) // 2, (height - side) // 2, side)]
    third = side // 3
    for i in range(3):
        left = (width - third) * i // 2
        boxes.append((left, (height - third) // 2, third))
    return [image.crop((x, y, x + s, y + s)).resize((size, size), Image.LANCZOS) for x, y, s in boxes]


def prepare(out_dir: str, size: int = 256, root: str = _ROOT) -> dict:
    """Writes the crops and ``MANIFEST.json`` under ``out_dir``; returns the manifest. A missing package is one
    line naming the packages to install."""
    from PIL import Image

    missing = [s for s in SOURCES if not _resolved(root, s.path)]
    if missing:
        packages = sorted({s.package for s in missing})
        raise DataUnavailableError(f"{len(missing)} wallpaper file(s) missing (first: {missing[0].path}); install "
                                   f"the Debian packages {' '.join(packages)} (apt-get install {' '.join(packages)}).")
    manifest = {"size": size, "source_root": root, "licences": LICENCES, "files": []}
    for role in ROLES:
        os.makedirs(os.path.join(out_dir, role), exist_ok=True)
    for source in SOURCES:
        with Image.open(_resolved(root, source.path)) as opened:
            image = _flattened(opened)
        stem = os.path.splitext(os.path.basename(source.path))[0]  # a Plasma folder's name
        crops = _crops(image, size)[:1] if source.role.startswith("heldout") else _crops(image, size)
        for i, crop in enumerate(crops):
            name = f"{role_prefix(source)}{stem}_{i}.png"
            crop.save(os.path.join(out_dir, source.role, name))
            manifest["files"].append({"file": f"{source.role}/{name}",
                                      "source": os.path.relpath(_resolved(root, source.path), root),
                                      "package": source.package, "licence": LICENCES[source.package]})
    with open(os.path.join(out_dir, "MANIFEST.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest


def _resolved(root: str, path: str) -> str | None:
    """The image file of a source: the file itself, or the largest image of a Plasma wallpaper folder
    (``contents/images/WIDTHxHEIGHT.jpg``); None if missing."""
    full = os.path.join(root, path)
    if os.path.isfile(full):
        return full
    images = os.path.join(full, "contents", "images")
    if not os.path.isdir(images):
        return None

    def area(name):
        width, _, height = os.path.splitext(name)[0].partition("x")
        return int(width) * int(height) if width.isdigit() and height.isdigit() else 0

    names = sorted(os.listdir(images), key=area)
    return os.path.join(images, names[-1]) if names else None


def role_prefix(source: Source) -> str:
    """Crops of different packages never share a name ('mate_Wood_0.png', 'gnome_wood-l_0.png')."""
    return source.package.split("-")[0] + "_"


def _flattened(image):
    """RGB, with transparent areas laid on white (several wallpapers are RGBA with transparent margins), and
    without the source's colour profile (libpng warns about some of them on every read)."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    flat = image.convert("RGB")
    flat.info.pop("icc_profile", None)
    return flat

