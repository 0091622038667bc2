"""Transactions: writing an entry atomically, its commit journal, and the recovery of killed exports.

Owns :func:`staging` / :class:`Staging` (an export writes into a hidden ``.NAME.tmp-PID-*`` folder inside the
zoo, held alive by a ``flock`` on its ``alive.lock``; only :meth:`Staging.commit` renames it into place and
rewrites the registry), the commit's journal (``commit.json``: which tree the commit moves into ``zoo/NAME``,
written before anything moves) and :func:`recover`, which reads that journal to undo a commit killed between
its renames and the registry write, and removes dead staging folders and registry temp files. The fault points
``zoo.staged`` and ``zoo.moved_in`` (:mod:`tfadv.faults`) are here. These live together because the journal's
format, the staging folder's name and the liveness lock are one protocol between the writer and its recovery.

Builds on :mod:`tfadv.zoo.store` (the registry lock and atomic write) and :mod:`tfadv.zoo.integrity` (the tree
checksums the journal records); the reader's check (:func:`tfadv.zoo.loading.verify`) calls down into the
recovery here, never the other way (dependencies run store <- integrity <- transactions <- loading <- copying).
"""

import contextlib
import datetime
import fcntl
import json
import os
import re
import shutil
import tempfile

from tfadv import faults
from tfadv.errors import ZooError
from tfadv.zoo.integrity import tree_sha256
from tfadv.zoo.store import _check_entry, _registry_lock, _write_registry, check_name, default_zoo_dir, read_registry

JOURNAL = "commit.json"  # inside a staging folder: the commit in progress
ALIVE = "alive.lock"  # inside a staging folder: flock-held by the exporting process
_STAGE_RE = re.compile(r"^\.(?P<name>[a-z0-9][a-z0-9_.-]*)\.tmp-(?P<pid>\d+)-")
_REGISTRY_TMP_RE = re.compile(r"^\.registry\..*\.tmp$")


class Staging:
    """A SavedModel being written into the zoo; see :func:`staging`."""

    def __init__(self, name: str, zoo_dir: str, overwrite: bool):
        self.name, self.zoo_dir, self.overwrite = name, zoo_dir, overwrite
        self._tmp_root = tempfile.mkdtemp(dir=zoo_dir, prefix=f".{name}.tmp-{os.getpid()}-")
        # Held while the export runs (the kernel drops it if the process dies): recover() tells a live export
        # from a dead one by this lock, not by a process id that the system may have given to another process.
        self._alive = open(os.path.join(self._tmp_root, ALIVE), "w")
        fcntl.flock(self._alive, fcntl.LOCK_EX)
        self.path = os.path.join(self._tmp_root, "saved_model")  # write the SavedModel here
        self.committed = False

    def commit(self, *, kind: str, dataset: str, metrics: dict, config: dict, **extra) -> dict:
        """Hashes the staged SavedModel, moves it into place and registers it; returns the entry."""
        faults.point("zoo.staged")
        fields = {"kind": kind, "dataset": dataset, "path": self.name, "sha256": tree_sha256(self.path),
                  "metrics": metrics, "config": config,
                  "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  **extra}
        _check_entry(self.name, fields)
        dest = os.path.join(self.zoo_dir, self.name)
        with _registry_lock(self.zoo_dir):
            registry = read_registry(self.zoo_dir)
            if not self.overwrite and (self.name in registry or os.path.exists(dest)):
                raise ZooError(f"Zoo entry {self.name!r} already exists in {self.zoo_dir!r}; "
                               "pass overwrite=True (--overwrite) to replace it.")
            self._write_journal(fields["sha256"])  # lets recover() undo a kill between the renames and the registry
            old = None
            if os.path.exists(dest):
                old = os.path.join(self._tmp_root, "previous")
                os.rename(dest, old)
            os.rename(self.path, dest)
            registry[self.name] = fields
            try:
                faults.point("zoo.moved_in")
                _write_registry(self.zoo_dir, registry)
            except BaseException:
                os.rename(dest, self.path)  # put things back as they were
                if old:
                    os.rename(old, dest)
                raise
        self.committed = True
        return fields

    def _write_journal(self, sha256: str) -> None:
        """Records, before anything moves, which tree this commit puts at ``zoo/NAME`` (see :func:`recover`)."""
        with open(os.path.join(self._tmp_root, JOURNAL), "w") as f:
            json.dump({"name": self.name, "sha256": sha256}, f)
            f.flush()
            os.fsync(f.fileno())


def _alive(stage: str, pid: int) -> bool:
    """Whether the export owning staging folder ``stage`` still runs: its lock is held (the kernel drops it when
    the process dies); folders from before the lock fall back to asking whether ``pid`` exists."""
    try:
        with open(os.path.join(stage, ALIVE)) as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(lock, fcntl.LOCK_UN)
            return False
    except FileNotFoundError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(zoo_dir: str | None = None) -> list[str]:
    """Cleans up after exports that were killed; returns the entry names it restored.

    A killed export leaves its hidden staging folder (``.NAME.tmp-PID-*``),
    which is removed once its process is gone (its ``alive.lock`` is free),
    and a killed registry rewrite its ``.registry.*.tmp`` file. A kill inside a commit, after
    the new SavedModel was renamed into ``zoo/NAME`` but before the registry
    was rewritten, is undone: the commit's journal names the tree it moved in,
    and a ``zoo/NAME`` holding that tree which the registry does not point to
    is removed (a first-time entry leaves no orphan); when the commit was
    replacing an entry, the previous SavedModel, which still matches the
    registry's checksum, is put back. Runs at the start of every export, and
    when a reader finds an entry failing its checksum beside a dead staging
    folder.
    """
    zoo_dir = zoo_dir or default_zoo_dir()
    restored = []
    with _registry_lock(zoo_dir):
        registry = read_registry(zoo_dir)
        for folder in sorted(os.listdir(zoo_dir)):
            if _REGISTRY_TMP_RE.match(folder):  # a registry rewrite killed before its rename (writers hold the lock)
                os.remove(os.path.join(zoo_dir, folder))
                continue
            match = _STAGE_RE.match(folder)
            stage = os.path.join(zoo_dir, folder)
            if not match or _alive(stage, int(match["pid"])):
                continue
            name = match["name"]
            previous, dest = os.path.join(stage, "previous"), os.path.join(zoo_dir, name)
            wanted = (registry.get(name) or {}).get("sha256")
            moved_in = _journal_sha256(stage)
            if moved_in and moved_in != wanted and os.path.isdir(dest) and tree_sha256(dest) == moved_in:
                shutil.rmtree(dest)  # the killed commit's SavedModel, never registered
            if os.path.isdir(previous) and wanted and tree_sha256(previous) == wanted:
                if os.path.isdir(dest) and tree_sha256(dest) != wanted:
                    shutil.rmtree(dest)
                if not os.path.isdir(dest):
                    os.rename(previous, dest)
                    restored.append(name)
            shutil.rmtree(stage, ignore_errors=True)
    return restored


def _journal_sha256(stage: str) -> str | None:
    """The checksum a killed commit recorded in its staging folder, or None (no commit had started)."""
    try:
        with open(os.path.join(stage, JOURNAL)) as f:
            return json.load(f)["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _recovered_a_killed_export(name: str, zoo_dir: str | None) -> bool:
    """Runs :func:`recover` for a reader that found entry ``name`` failing its checksum while a dead export's
    staging folder is present; whether it put something back. A read-only zoo is left as it is."""
    zoo_dir = zoo_dir or default_zoo_dir()
    if not any(_STAGE_RE.match(f) for f in os.listdir(zoo_dir)):
        return False
    try:
        return name in recover(zoo_dir)
    except OSError:
        return False


@contextlib.contextmanager
def staging(name: str, zoo_dir: str | None = None, overwrite: bool = False):
    """Context manager giving a :class:`Staging` to export into; nothing lands unless it commits.

        with tfadv.zoo.staging("my_model") as stage:
            tfadv.savedmodel.write_classifier(stage.path, model)
            metrics = evaluate(tf.saved_model.load(stage.path))
            stage.commit(kind="classifier", dataset="fashion_mnist", metrics=metrics, config=cfg)
    """
    zoo_dir = zoo_dir or default_zoo_dir()
    check_name(name)
    os.makedirs(zoo_dir, exist_ok=True)
    recover(zoo_dir)
    if not overwrite and name in read_registry(zoo_dir):
        raise ZooError(f"Zoo entry {name!r} already exists in {zoo_dir!r}; pass overwrite=True (--overwrite).")
    stage = Staging(name, zoo_dir, overwrite)
    try:
        yield stage
    finally:
        shutil.rmtree(stage._tmp_root, ignore_errors=True)
        stage._alive.close()
