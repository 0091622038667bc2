"""A quiet start for the tools: TensorFlow's start-up lines and TFDS's missing-folder warning kept off stderr.

:func:`quiet_startup` runs when :mod:`tfadv.cli` is imported (every tool does so first), before anything imports
TensorFlow. The user's own ``TF_CPP_MIN_LOG_LEVEL`` wins (0 shows everything); TensorFlow's errors and FATAL lines
always show.
"""

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import threading

# Quiet start. TensorFlow's shared libraries log while they load (oneDNN, CUDA drivers), before TensorFlow reads
# TF_CPP_MIN_LOG_LEVEL, so the variable alone does not hide those lines: they are filtered out of stderr while
# `tensorflow` is first imported and finds its devices, at the level the variable says. A C++ log line starts
# "I0123 12:34:56.789 42 file.cc:12] " (absl; before its clock is set, "I0000 00:00:1712345678.901 42 file.cc:12] ")
# or "2024-01-23 12:34:56.789: I path/file.cc:12] " (TensorFlow's own logging). FATAL lines always show.
_NATIVE_LOG_LINE = re.compile(rb"^(?:([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+"  # absl
                              rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IWEF]))"  # TensorFlow's own
                              rb" \S+:\d+\] ")
_SEVERITIES = b"IWEF"
# Said (as a WARNING) before the first line absl logs; and the second line of cpu_feature_guard's INFO line.
_NATIVE_INFO_TAILS = re.compile(rb"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
                                rb"STDERR|^To enable the following instructions: .* rebuild TensorFlow with the "
                                rb"appropriate compiler flags")
# ERROR lines that say nothing wrong, hidden from level 2 (the default) on: a CUDA build of TensorFlow registering its
# GPU plugins twice (tensorflow/tensorflow#62075), and, on a machine without CUDA drivers (which TensorFlow has just
# said at INFO level: "Could not find cuda drivers on your machine, GPU will not be used"), its failed cuInit.
_HARMLESS_ERRORS = re.compile(rb"\] (?:Unable to register cu(?:DNN|FFT|BLAS) factory: Attempting to register factory "
                              rb"for plugin|computation placer already registered)")
_NO_CUDA_DRIVER = re.compile(rb"\] Could not find cuda drivers on your machine")
_FAILED_CUINIT = re.compile(rb"\] failed call to cuInit: ")
# TFDS checks for a prepared copy of a dataset before tfadv.data falls back to its other sources, and warns when the
# folder has none; when no source has the data, the error lists what was tried.
_TFDS_NO_PREPARED_COPY = re.compile(r"^Variant folder .* has no dataset_info\.json$")


def quiet_startup() -> None:
    """Keeps a tool's start quiet; runs when this module is imported, before anything imports TensorFlow.

    * ``TF_CPP_MIN_LOG_LEVEL=2`` unless the environment sets it: TensorFlow's C++ INFO and WARNING lines (CPU
      features, oneDNN, CUDA drivers) stay hidden, its errors show; the user's own value wins (0: everything).
    * The lines TensorFlow prints while its libraries load and it finds its devices, before it reads that
      variable, are filtered out of stderr at the variable's level (:class:`_QuietTensorFlowImport`).
    * TFDS's absl warning ``Variant folder ... has no dataset_info.json`` is dropped; its other warnings show.
    """
    level = os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("absl").addFilter(_not_tfds_no_prepared_copy)  # adding it twice keeps one
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport(int(level) if level.strip().isdigit() else 0))


def _not_tfds_no_prepared_copy(record: logging.LogRecord) -> bool:
    try:
        return not _TFDS_NO_PREPARED_COPY.match(record.getMessage())
    except Exception:  # noqa: BLE001 - a malformed record is for the handler to report, not for this filter
        return True


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` (once, as the next finders do) and filters stderr while it is first imported.

    The import then lists the physical devices, still filtered, so that CUDA's start-up lines come now and not
    at the first operation. Listing them leaves the devices configurable (visible devices, memory growth).
    """

    def __init__(self, level: int):
        self.level = level
        self.no_cuda_driver = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once; the search below finds the real spec
        spec = importlib.util.find_spec(fullname)
        loader = spec.loader if spec is not None else None
        if loader is not None and hasattr(loader, "exec_module"):
            exec_module = loader.exec_module

            def quiet_exec_module(module):
                del loader.exec_module  # the loader's own method again
                with _stderr_filtered(self.is_noise):
                    exec_module(module)
                    with contextlib.suppress(Exception):  # only to bring the devices' lines forward
                        module.config.list_physical_devices()

            loader.exec_module = quiet_exec_module
        return spec

    def is_noise(self, line: bytes) -> bool:
        match = _NATIVE_LOG_LINE.match(line)
        if not match:
            return self.level >= 1 and bool(_NATIVE_INFO_TAILS.match(line))
        severity = _SEVERITIES.index(match.group(1) or match.group(2))
        self.no_cuda_driver = self.no_cuda_driver or bool(_NO_CUDA_DRIVER.search(line))
        harmless = bool(_HARMLESS_ERRORS.search(line)) or (self.no_cuda_driver and bool(_FAILED_CUINIT.search(line)))
        return severity < min(self.level, 3) or (harmless and self.level >= 2)


@contextlib.contextmanager
def _stderr_filtered(is_noise):
    """Passes on what is written to file descriptor 2 (by C++ as by Python) line by line, but for ``is_noise``."""
    try:
        sys.stderr.flush()
        real = os.dup(2)
    except (AttributeError, OSError, ValueError):  # no stderr to filter (e.g. pythonw)
        yield
        return
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)

    def pump():
        with os.fdopen(read, "rb") as pipe:
            for line in pipe:  # reads to the end even if stderr fails, so that no writer blocks on a full pipe
                if not is_noise(line):
                    with contextlib.suppress(OSError):
                        while line:
                            line = line[os.write(real, line):]

    thread = threading.Thread(target=pump, name="tfadv-stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        with contextlib.suppress(AttributeError, OSError, ValueError):
            sys.stderr.flush()
        os.dup2(real, 2)  # closes the pipe's last write end: the thread reads the rest and stops
        thread.join(timeout=10)
        if not thread.is_alive():  # else a child process still holds the pipe, and the thread `real`
            os.close(real)
