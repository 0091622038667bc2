"""Copying: one entry carried from another zoo (e.g. the checkout's) into the working zoo.

Owns :func:`copy_entry`, alone because it is the one operation that uses every other role: it reads the source
entry (:mod:`tfadv.zoo.store`), verifies it (:mod:`tfadv.zoo.loading`) and writes the copy through the same
atomic staging as an export (:mod:`tfadv.zoo.transactions`), so a copy is crash-safe and checksum-checked like
any export. Top of the package: nothing in :mod:`tfadv.zoo` imports it (dependencies run store <- integrity <-
transactions <- loading <- copying).
"""

import os
import shutil

from tfadv.errors import ZooError
from tfadv.zoo.loading import verify
from tfadv.zoo.store import entry
from tfadv.zoo.transactions import staging


def copy_entry(name: str, source_dir: str, dest_dir: str) -> None:
    """Copies zoo entry ``name`` (checksum verified) into the working zoo, unless the same artifact is there."""
    if os.path.abspath(source_dir) == os.path.abspath(dest_dir):
        return
    source = entry(name, source_dir)
    path = verify(name, source_dir)
    try:
        if entry(name, dest_dir)["sha256"] == source["sha256"] and verify(name, dest_dir):
            return
        print(f"Replacing {name!r} in {dest_dir} (another artifact, e.g. from make classifier) with the copy in "
              f"{source_dir}.")
    except ZooError:
        pass
    with staging(name, dest_dir, overwrite=True) as stage:
        shutil.copytree(path, stage.path)
        fields = {k: v for k, v in source.items() if k not in ("path", "sha256", "created")}
        stage.commit(**fields, copied_from=os.path.abspath(source_dir))
