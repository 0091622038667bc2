"""The model zoo: ``zoo/registry.json`` plus exported SavedModels, checked on load.

The registry maps an entry name to a dict with at least ``kind``, ``dataset``,
``path`` (SavedModel folder relative to the zoo), ``sha256`` (see
:func:`tree_sha256`), ``metrics`` and ``config``.

    tfadv.zoo.names()                             # entry names, sorted
    model = tfadv.zoo.load("fashion_mnist_small_cnn")
    logits = model.serve(images)                  # float32 [B, 28, 28, 1] in [0, 1]

Writing is atomic: :func:`staging` exports into a hidden temporary folder
inside the zoo and only a successful :meth:`Staging.commit` renames it into
place and rewrites the registry (itself through a temporary file and
``os.replace``), so a crash never leaves a half-written entry.

One module per role; every name is used as ``tfadv.zoo.NAME``:

* :mod:`~tfadv.zoo.store`: the registry (read, write under its lock, entry names and fields, where the zoo is):
  ``read_registry``, ``names``, ``entry``, ``path_of``, ``check_name``, ``register``, ``add_metrics``,
  ``other_tools_commands``, ``entries_trained_against``, ``tables_measuring`` (what a rebuild reruns),
  ``default_zoo_dir``, ``KINDS``, ``REQUIRED_FIELDS``, ``REGISTRY_FILE``.
* :mod:`~tfadv.zoo.integrity`: the checksums, ``tree_sha256`` and ``file_sha256``.
* :mod:`~tfadv.zoo.transactions`: atomic writes and their recovery, ``staging``, ``Staging``, ``recover``,
  ``JOURNAL``, ``ALIVE``.
* :mod:`~tfadv.zoo.loading`: the reader, ``verify``, ``load``, ``ServedModel``, ``keras_layer``.
* :mod:`~tfadv.zoo.copying`: ``copy_entry``, one entry from another zoo into this one.

Imports run one way, each module using only those before it: store <- integrity <- transactions <- loading <-
copying (``verify`` runs a killed export's recovery, so the reader sits above the journal, not beside the digests).
"""

from tfadv.zoo.store import (KINDS, MAX_NAME, REGISTRY_FILE, REQUIRED_FIELDS, add_metrics, check_name,
                             default_zoo_dir, entries_trained_against, entry, names, other_tools_commands, path_of,
                             read_registry, register, tables_measuring)
from tfadv.zoo.store import _write_registry as _write_registry  # tests write a registry as an export would
from tfadv.zoo.integrity import file_sha256, tree_sha256
from tfadv.zoo.transactions import ALIVE, JOURNAL, Staging, recover, staging
from tfadv.zoo.loading import ServedModel, keras_layer, load, verify
from tfadv.zoo.copying import copy_entry

__all__ = ["ALIVE", "JOURNAL", "KINDS", "MAX_NAME", "REGISTRY_FILE", "REQUIRED_FIELDS", "ServedModel", "Staging",
           "add_metrics", "check_name", "copy_entry", "default_zoo_dir", "entries_trained_against", "entry",
           "file_sha256", "keras_layer", "load", "names", "other_tools_commands", "path_of", "read_registry",
           "recover", "register", "staging", "tables_measuring", "tree_sha256", "verify"]
