"""Integrity: the checksums that say an artifact is the one the registry recorded.

Owns the digests only: :func:`tree_sha256` (a SavedModel folder: sorted relative paths and per-file SHA-256, the
registry's ``sha256``), :func:`file_sha256` (a model outside the zoo, e.g. a perturbation entry's
``target_sha256``) and the per-file digest both use. They are pure functions of the files, with no knowledge of
the registry, so the commit journal (:mod:`tfadv.zoo.transactions`) and the reader's check
(:func:`tfadv.zoo.loading.verify`, which can run the recovery of a killed export) both build on them.

Imports no other ``tfadv.zoo`` module (dependencies run store <- integrity <- transactions <- loading <- copying;
store and integrity are independent of each other).
"""

import hashlib
import os

from tfadv.errors import ZooError


def _file_digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def tree_sha256(path: str) -> str:
    """SHA-256 over every file under ``path``: sorted relative paths and their contents.

    Reproduce it without tfadv: for each file in sorted relative-path order
    (POSIX separators), feed ``relpath + "\\0" + sha256(content).hexdigest() + "\\n"``
    into one SHA-256.
    """
    if not os.path.isdir(path):
        raise ZooError(f"SavedModel folder {path!r} is missing.")
    files = []
    for root, _, names in os.walk(path):
        for n in names:
            full = os.path.join(root, n)
            files.append((os.path.relpath(full, path).replace(os.sep, "/"), full))
    digest = hashlib.sha256()
    for rel, full in sorted(files):
        digest.update(f"{rel}\0{_file_digest(full)}\n".encode())
    return digest.hexdigest()


def file_sha256(path: str) -> str:
    """SHA-256 of a model outside the zoo: :func:`tree_sha256` of a folder, the content's of a file."""
    return tree_sha256(path) if os.path.isdir(path) else _file_digest(path)
