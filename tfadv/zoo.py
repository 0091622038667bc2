"""The model zoo: ``zoo/registry.json`` plus exported SavedModels, checked on load.

The registry maps an entry name to a dict with at least ``kind``, ``dataset``,
``path`` (SavedModel folder relative to the zoo), ``sha256`` (see
:func:`tree_sha256`), ``metrics`` and ``config``.

    tfadv.zoo.list()                              # entry names
    model = tfadv.zoo.load("fashion_mnist_small_cnn")
    logits = model.serve(images)                  # float32 [B, 28, 28, 1] in [0, 1]

Writing is atomic: :func:`staging` exports into a hidden temporary folder
inside the zoo and only a successful :meth:`Staging.commit` renames it into
place and rewrites the registry (itself through a temporary file and
``os.replace``), so a crash never leaves a half-written entry.
"""

import builtins
import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile

from tfadv import faults
from tfadv.errors import ZooError, summary

REGISTRY_FILE = "registry.json"
KINDS = ("classifier", "perturbation", "universal", "style", "defended_classifier")
REQUIRED_FIELDS = ("kind", "dataset", "path", "sha256", "metrics", "config")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
MAX_NAME = 128  # the staging folder adds ~25 characters; file names end at 255


def check_name(name) -> None:
    """Refuses an entry name that is not a plain folder name of the zoo (nor the registry file itself)."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or len(name) > MAX_NAME:
        raise ZooError(f"Zoo entry name {str(name)[:60]!r} must be lowercase letters, digits, '_', '.', '-' "
                       f"(at most {MAX_NAME} characters).")
    if name == REGISTRY_FILE:
        raise ZooError(f"Zoo entry name {name!r} is the registry's own file name: choose another.")


def default_zoo_dir() -> str:
    """``$TFADV_ZOO_DIR``, else the ``zoo/`` folder of this source checkout, else ``./zoo``."""
    if os.environ.get("TFADV_ZOO_DIR"):
        return os.environ["TFADV_ZOO_DIR"]
    checkout = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "zoo")
    return checkout if os.path.isdir(checkout) else os.path.abspath("zoo")


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


def read_registry(zoo_dir: str | None = None) -> dict:
    """Returns the registry as a dict (empty if the file does not exist yet)."""
    path = os.path.join(zoo_dir or default_zoo_dir(), REGISTRY_FILE)
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as f:
            registry = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ZooError(f"Zoo registry {path!r} is unreadable or not valid JSON: {e}") from None
    if not isinstance(registry, dict):
        raise ZooError(f"Zoo registry {path!r} must be a JSON object mapping names to entries.")
    return registry


def names(zoo_dir: str | None = None) -> list[str]:
    """Sorted names of the zoo's entries."""
    return sorted(read_registry(zoo_dir))


def entry(name: str, zoo_dir: str | None = None) -> dict:
    """Returns the registry entry ``name``; an unknown name lists the known ones."""
    registry = read_registry(zoo_dir)
    if name not in registry:
        raise ZooError(f"Unknown zoo entry {name!r}. Known entries: {', '.join(sorted(registry)) or '(none)'}.")
    found = registry[name]
    missing = [k for k in REQUIRED_FIELDS if k not in found]
    if missing:
        raise ZooError(f"Zoo entry {name!r} lacks required field(s): {', '.join(missing)}.")
    if found["kind"] not in KINDS:
        raise ZooError(f"Zoo entry {name!r}: unknown kind {found['kind']!r}. Known kinds: {', '.join(KINDS)}.")
    return found


def path_of(name: str, zoo_dir: str | None = None) -> str:
    """Path of entry ``name``'s SavedModel folder, which must lie inside the zoo.

    The registry's ``path`` is relative to the zoo; an absolute path, ``..``, or
    a link leading out of the zoo is refused: whoever can edit the registry
    could otherwise point an entry (and its recorded checksum) at any model
    on the machine, and a SavedModel runs as code.
    """
    zoo_dir = zoo_dir or default_zoo_dir()
    relative = entry(name, zoo_dir)["path"]
    root = os.path.realpath(zoo_dir)
    if not isinstance(relative, str) or not relative or os.path.isabs(relative):
        raise ZooError(f"Zoo entry {name!r}: its path {relative!r} must be a folder relative to the zoo "
                       f"({zoo_dir}); refused.")
    resolved = os.path.realpath(os.path.join(root, relative))
    if os.path.commonpath([resolved, root]) != root or resolved == root:
        raise ZooError(f"Zoo entry {name!r}: its path {relative!r} leads outside the zoo ({zoo_dir}); refused "
                       "(was the registry edited?).")
    return os.path.join(zoo_dir, relative)


def file_sha256(path: str) -> str:
    """SHA-256 of a model outside the zoo: :func:`tree_sha256` of a folder, the content's of a file."""
    return tree_sha256(path) if os.path.isdir(path) else _file_digest(path)


def verify(name: str, zoo_dir: str | None = None) -> str:
    """Checks that entry ``name``'s files exist and match its sha256; returns its path."""
    found = entry(name, zoo_dir)
    if found["path"] is None:
        raise ZooError(f"Zoo entry {name!r} is a recipe with no artifact: {found.get('note', 'train it first')}.")
    path = path_of(name, zoo_dir)
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise ZooError(f"Zoo entry {name!r}: no SavedModel at {path!r} (saved_model.pb missing).")
    actual = tree_sha256(path)
    if actual != found["sha256"] and _recovered_a_killed_export(name, zoo_dir):
        actual = tree_sha256(path)  # a killed commit had left its SavedModel there: the old one is back
    if actual != found["sha256"]:
        raise ZooError(f"Zoo entry {name!r} fails its checksum: registry says {found['sha256']}, "
                       f"files at {path!r} hash to {actual}. The artifact was modified or corrupted; "
                       "re-export it or restore it from version control.")
    return path


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


class ServedModel:
    """A loaded zoo entry: ``serve(images)`` checks the image contract, then calls the SavedModel's ``serve``.

    ``serve`` raises :class:`~tfadv.errors.InputError` naming the problem
    (rank, size, channels, dtype, empty batch, NaN/inf, values outside [0, 1])
    before TensorFlow sees the batch. ``saved_model`` is the plain
    ``tf.saved_model.load`` object (referenced by ``serve`` too, so keeping
    only ``serve`` is safe) and ``entry`` the registry entry. ``serve`` is
    one function object for the model's lifetime, so traced attacks cache it.
    """

    def __init__(self, name: str, saved_model, entry: dict):
        from tfadv.inputs import check_images

        self.name, self.saved_model, self.entry = name, saved_model, entry
        shape = entry.get("input_shape")

        def serve(*images):  # style entries take (content, style)
            # Calling through saved_model keeps it referenced even when only .serve is kept.
            return saved_model.serve(*[check_images(x, shape, name=f"{name}: images") for x in images])

        self.serve = serve

    def __getattr__(self, attribute):  # other endpoints (e.g. a universal entry's perturbation())
        return getattr(self.saved_model, attribute)


def load(name: str, zoo_dir: str | None = None, check: bool = True) -> ServedModel:
    """Loads entry ``name`` with ``tf.saved_model.load`` after verifying its checksum.

    Returns a :class:`ServedModel`: ``.serve(images)`` with the image contract
    checked, ``.saved_model`` the plain loaded object.
    """
    import tensorflow as tf

    path = verify(name, zoo_dir) if check else path_of(name, zoo_dir)
    try:
        loaded = tf.saved_model.load(path)
    except Exception as e:  # noqa: BLE001 - TF raises many types for a corrupt model
        raise ZooError(f"Zoo entry {name!r}: the SavedModel at {path!r} cannot be loaded "
                       f"({summary(e)}).") from None
    if not hasattr(loaded, "serve"):
        raise ZooError(f"Zoo entry {name!r}: the SavedModel at {path!r} has no 'serve' endpoint.")
    return ServedModel(name, loaded, entry(name, zoo_dir))


def keras_layer(name: str, zoo_dir: str | None = None):
    """Entry ``name`` (checksum verified) as a frozen ``keras.layers.TFSMLayer`` calling ``serve``.

    This is how trainers use a zoo classifier as their attack target: the very
    artifact users download, not a re-trained copy.
    """
    import keras

    path = verify(name, zoo_dir)
    try:
        # dtype float32: the serve signature takes float32 images, also under a mixed_float16 global policy.
        return keras.layers.TFSMLayer(path, call_endpoint="serve", trainable=False, name=name.replace(".", "_"),
                                      dtype="float32")
    except Exception as e:  # noqa: BLE001 - TF raises many types for a corrupt model
        raise ZooError(f"Zoo entry {name!r}: the SavedModel at {path!r} cannot be loaded "
                       f"({summary(e)}).") from None


@contextlib.contextmanager
def _registry_lock(zoo_dir: str):
    with open(os.path.join(zoo_dir, ".registry.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_registry(zoo_dir: str, registry: dict) -> None:
    path = os.path.join(zoo_dir, REGISTRY_FILE)
    fd, tmp = tempfile.mkstemp(dir=zoo_dir, prefix=".registry.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(registry, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the registry is for everyone to read
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def register(name: str, fields: dict, zoo_dir: str | None = None) -> dict:
    """Adds or replaces a registry entry that needs no artifact move (e.g. a recipe with ``path: None``)."""
    zoo_dir = zoo_dir or default_zoo_dir()
    _check_entry(name, fields)
    os.makedirs(zoo_dir, exist_ok=True)
    with _registry_lock(zoo_dir):
        registry = read_registry(zoo_dir)
        registry[name] = fields
        _write_registry(zoo_dir, registry)
    return fields


def other_tools_commands(name: str, zoo_dir: str | None = None) -> list[str]:
    """The commands of the columns other tools added to entry ``name`` after export (AutoAttack in a robustness
    table, the training cost, security curves, style evaluation, transfer tables), each once: a re-export replaces
    the entry, so a rebuild reruns these (tools/build_zoo.sh reads them before it exports)."""
    metrics = read_registry(zoo_dir).get(name, {}).get("metrics", {})
    found = [column["command"] for key, table in sorted(metrics.items()) if key.startswith("robustness_")
             for column_name, column in table.items()
             if column_name != "settings" and isinstance(column, dict) and "command" in column]
    found += [metrics["training_cost"]["settings"]["command"]] if "training_cost" in metrics else []
    found += [table["command"] for key, table in sorted(metrics.items()) if key.startswith("security_curve_")]
    found += [metrics["style_evaluation"]["command"]] if "style_evaluation" in metrics else []
    found += [table["command"] for key, table in sorted(metrics.items()) if key.startswith("transfer_")]
    return [*dict.fromkeys(found)]  # in order, once each (this module shadows the builtin list)


def add_metrics(name: str, metrics: dict, zoo_dir: str | None = None) -> dict:
    """Merges ``metrics`` into entry ``name``'s metrics (read-modify-write under the registry lock).

    For figures measured after export (e.g. a defence's robustness table); the artifact and its checksum
    are untouched. Returns the updated entry.
    """
    zoo_dir = zoo_dir or default_zoo_dir()
    with _registry_lock(zoo_dir):
        registry = read_registry(zoo_dir)
        if name not in registry:
            raise ZooError(f"Unknown zoo entry {name!r}. Known entries: {', '.join(sorted(registry)) or 'none'}.")
        registry[name]["metrics"] = {**registry[name]["metrics"], **metrics}
        _write_registry(zoo_dir, registry)
    return registry[name]


def _check_entry(name, fields):
    check_name(name)
    missing = [k for k in REQUIRED_FIELDS if k not in fields]
    if missing:
        raise ZooError(f"Zoo entry {name!r} lacks required field(s): {', '.join(missing)}.")
    if fields["kind"] not in KINDS:
        raise ZooError(f"Zoo entry {name!r}: unknown kind {fields['kind']!r}. Known kinds: {', '.join(KINDS)}.")


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


JOURNAL = "commit.json"  # inside a staging folder: the commit in progress
ALIVE = "alive.lock"  # inside a staging folder: flock-held by the exporting process
_STAGE_RE = re.compile(r"^\.(?P<name>[a-z0-9][a-z0-9_.-]*)\.tmp-(?P<pid>\d+)-")
_REGISTRY_TMP_RE = re.compile(r"^\.registry\..*\.tmp$")


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


def recover(zoo_dir: str | None = None) -> builtins.list[str]:
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


@contextlib.contextmanager
def staging(name: str, zoo_dir: str | None = None, overwrite: bool = False):
    """Context manager giving a :class:`Staging` to export into; nothing lands unless it commits.

        with tfadv.zoo.staging("my_model") as stage:
            tfadv.export.write_classifier(stage.path, model)
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


def list(zoo_dir: str | None = None) -> builtins.list[str]:  # noqa: A001 - the API the issue names
    """Alias of :func:`names`: the zoo's entry names."""
    return names(zoo_dir)


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
