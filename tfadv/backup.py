"""A training run's backup: one checkpoint per epoch, written so that no crash can leave it unusable.

Keras' ``BackupAndRestore`` rewrites ``latest.weights.h5`` and its epoch file
in place: a kill or a full disk during that write leaves a torn file that
every rerun dies on, and a kill between the two files trains an epoch twice.
:class:`RunBackup` instead writes each epoch's checkpoint (weights, optimizer
state, the epoch count and every epoch's logs so far) into a temporary folder,
flushes it to disk, and renames the folder into place: a checkpoint is either
whole or absent. Its state file records the SHA-256 of the weights and of the
callbacks' state, so a checkpoint damaged later is detected before any weight
is loaded, and the run falls back to the previous one (the two newest are kept)::

    WORKDIR/backup/ckpt-000004/{model.weights.h5, callbacks.npz, state.json}   epoch 4, complete
    WORKDIR/backup/ckpt-000005/...                               epoch 5, complete
    WORKDIR/backup/.ckpt-000006.tmp/                             being written: ignored, removed on resume

The backup outlives ``fit``: the runner removes it only once the run's
metrics.json is written (:mod:`tfadv.training`), so a kill while the model
is saved or measured resumes after the last epoch instead of at epoch 1.
"""

import hashlib
import json
import logging
import os
import re
import shutil

import keras
import numpy as np

from tfadv import faults
from tfadv.errors import ConfigError, summary

log = logging.getLogger("tfadv.backup")

WEIGHTS, STATE, CALLBACK_ARRAYS = "model.weights.h5", "state.json", "callbacks.npz"
KEEP = 2  # complete checkpoints kept: the newest, and one to fall back to
_CKPT_RE = re.compile(r"^ckpt-(\d{6})$")
_LEGACY = ("latest.weights.h5", "training_metadata.json")  # Keras' BackupAndRestore files (older tfadv)


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _floats(logs: dict) -> dict:
    return {k: float(v) for k, v in (logs or {}).items()}


class ResumableCallback(keras.callbacks.Callback):
    """A callback whose memory between epochs the run's backup keeps, so that a resumed run decides as an
    unbroken one would (e.g. an early-stopping guard's best epoch and its weights)."""

    def backup_state(self) -> tuple[dict, list]:
        """(JSON-able values, list of numpy arrays) to keep."""
        raise NotImplementedError

    def restore_backup_state(self, values: dict, arrays: list) -> None:
        raise NotImplementedError


class RunBackup(keras.callbacks.Callback):
    """Checkpoints the model after every epoch and resumes a killed run from the newest sound checkpoint.

    Args:
        backup_dir: the run's ``backup/`` folder.
        callbacks: the run's :class:`ResumableCallback` s, whose state each checkpoint keeps too. A checkpoint
            also records whether a callback stopped training (early stopping): a resumed run then trains no
            further epoch.

    Put it after the callbacks it keeps in ``fit``'s list: it saves their state as of the epoch's end.

    After ``fit``: ``resumed_from_epoch`` is the epoch the run resumed after
    (0: started fresh) and ``history`` every epoch's logs, those of the
    killed processes included (``{metric: [value per epoch]}``).
    """

    def __init__(self, backup_dir: str, callbacks=()):
        super().__init__()
        self.backup_dir, self.callbacks = backup_dir, list(callbacks)
        self.resumed_from_epoch = 0
        self.epoch_logs: list[dict] = []

    # What is on disk.

    def checkpoints(self) -> list[str]:
        """The complete checkpoint folders, newest first."""
        if not os.path.isdir(self.backup_dir):
            return []
        found = sorted((n for n in os.listdir(self.backup_dir) if _CKPT_RE.match(n)), reverse=True)
        return [os.path.join(self.backup_dir, n) for n in found]

    def _read_state(self, folder: str) -> dict:
        """The checkpoint's state after checking its files against the recorded checksums; raises ValueError."""
        try:
            with open(os.path.join(folder, STATE)) as f:
                state = json.load(f)
            weights_sha256 = _sha256(os.path.join(folder, WEIGHTS))
            arrays_sha256 = _sha256(os.path.join(folder, CALLBACK_ARRAYS))
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{type(e).__name__}: {e}") from None
        if not isinstance(state, dict) or state.get("weights_sha256") != weights_sha256 \
                or state.get("callbacks_sha256") != arrays_sha256:
            raise ValueError("its files do not match the checksums in its state.json")
        return state

    def resume_epoch(self) -> int:
        """The number of epochs the newest sound checkpoint completed (0 without one), read before ``fit``."""
        for folder in self.checkpoints():
            try:
                return int(self._read_state(folder)["epoch"])
            except (ValueError, KeyError, TypeError):
                continue
        return 0

    # Restoring.

    def on_train_begin(self, logs=None):
        self._remove_partial()
        for folder in self.checkpoints():
            try:
                state = self._read_state(folder)
            except ValueError as e:
                log.warning("Backup checkpoint %s is damaged (%s): falling back to an older one.", folder, e)
                shutil.rmtree(folder, ignore_errors=True)
                continue
            self._load_weights(os.path.join(folder, WEIGHTS))
            self._restore_callbacks(state["callbacks"], os.path.join(folder, CALLBACK_ARRAYS))
            self._restore(int(state["epoch"]), state["history"], folder)
            if state["stopped_early"]:  # a callback ended training after this epoch: train no further epoch
                self.model._initial_epoch = max(self.params["epochs"], int(state["epoch"]))  # noqa: SLF001
            return
        self._restore_legacy()

    def _load_weights(self, path: str) -> None:
        try:
            self.model.load_weights(path)
        except Exception as e:  # noqa: BLE001 - a checkpoint whose checksum holds but whose layout differs
            raise ConfigError(f"The backup {path!r} does not fit this run's model ({summary(e)}); delete "
                              f"{self.backup_dir} to start over.") from None

    def _restore_callbacks(self, values: list, arrays_path: str) -> None:
        with np.load(arrays_path) as stored:
            for i, (callback, kept) in enumerate(zip(self.callbacks, values, strict=True)):
                arrays = [stored[f"{i}_{j}"] for j in range(kept["arrays"])]
                callback.restore_backup_state(kept["values"], arrays)

    def _restore(self, epoch: int, history: list[dict], where: str) -> None:
        self.model._initial_epoch = epoch  # noqa: SLF001 - what Keras' BackupAndRestore sets for fit
        self.resumed_from_epoch, self.epoch_logs = epoch, list(history)
        log.info("Resuming from %s: %d epoch(s) done.", where, epoch)

    def _restore_legacy(self) -> None:
        """A run killed under an older tfadv left Keras' BackupAndRestore files: resume from them if they read."""
        weights, metadata = (os.path.join(self.backup_dir, n) for n in _LEGACY)
        if not os.path.exists(weights):
            return
        try:
            with open(metadata) as f:
                epoch = int(json.load(f)["epoch"])
            self.model.load_weights(weights)
        except Exception as e:  # noqa: BLE001 - torn h5 or JSON files raise many types
            log.warning("The older-format backup in %s is unreadable (%s): training starts at epoch 1.",
                        self.backup_dir, summary(e))
            return
        self._restore(epoch, [], weights)

    # Saving.

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_logs.append(_floats(logs))
        self.save(epoch + 1)

    def save(self, epoch: int) -> str:
        """Writes the checkpoint after ``epoch`` epochs: whole or not at all; keeps the newest ``KEEP``."""
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"ckpt-{epoch:06d}"
        partial, final = os.path.join(self.backup_dir, f".{name}.tmp"), os.path.join(self.backup_dir, name)
        shutil.rmtree(partial, ignore_errors=True)
        os.makedirs(partial)
        weights = os.path.join(partial, WEIGHTS)
        self.model.save_weights(weights)
        _fsync(weights)
        faults.point("backup.weights_written")
        kept, arrays = [], {}
        for i, callback in enumerate(self.callbacks):
            values, callback_arrays = callback.backup_state()
            kept.append({"name": type(callback).__name__, "values": values, "arrays": len(callback_arrays)})
            arrays.update({f"{i}_{j}": np.asarray(a) for j, a in enumerate(callback_arrays)})
        arrays_path = os.path.join(partial, CALLBACK_ARRAYS)
        with open(arrays_path, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        state = {"epoch": epoch, "weights_sha256": _sha256(weights), "callbacks_sha256": _sha256(arrays_path),
                 "history": self.epoch_logs, "callbacks": kept, "stopped_early": bool(self.model.stop_training)}
        with open(os.path.join(partial, STATE), "w") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        faults.point("backup.before_commit")
        if os.path.exists(final):  # an epoch redone after a fallback: the new checkpoint replaces it
            shutil.rmtree(final)
        os.rename(partial, final)
        _fsync(self.backup_dir)
        for old in self.checkpoints()[KEEP:]:
            shutil.rmtree(old, ignore_errors=True)
        for legacy in _LEGACY:
            if os.path.exists(os.path.join(self.backup_dir, legacy)):
                os.remove(os.path.join(self.backup_dir, legacy))
        return final

    def _remove_partial(self) -> None:
        """Temporary folders of checkpoints a killed process was writing (the run folder lock rules out a live
        writer)."""
        if os.path.isdir(self.backup_dir):
            for n in os.listdir(self.backup_dir):
                if n.startswith(".ckpt-"):
                    shutil.rmtree(os.path.join(self.backup_dir, n), ignore_errors=True)

    def remove(self) -> None:
        """Deletes the backup: the run's results are safely written."""
        shutil.rmtree(self.backup_dir, ignore_errors=True)

    @property
    def history(self) -> dict:
        """Every epoch's logs as ``{metric: [value per epoch]}``, epochs of killed processes included."""
        merged: dict = {}
        for logs in self.epoch_logs:
            for k, v in logs.items():
                merged.setdefault(k, []).append(v)
        return merged
