"""Errors that tfadv raises for problems a user can fix.

Every one of them carries a message naming the problem and the offending
value. Command-line tools print these messages without a traceback.
"""

import re


# TensorFlow prefixes an op's error with where it ran: "{{function_node __wrapped__DecodeImage_device_/job:...}} ".
_TF_FUNCTION_NODE = re.compile(r"\{\{function_node [^}]*\}\}\s*")


def summary(error: BaseException, limit: int = 200) -> str:
    """``Type: first line of the message`` (at most ``limit`` characters of it), for one-line errors that wrap an
    exception from TensorFlow, Keras or h5py; just ``Type`` when the message is empty."""
    lines = _TF_FUNCTION_NODE.sub("", str(error)).splitlines()
    return f"{type(error).__name__}: {lines[0][:limit]}" if lines else type(error).__name__


class TfadvError(Exception):
    """Base class of tfadv's user-facing errors."""


class ConfigError(TfadvError, ValueError):
    """A configuration, flag or argument value is invalid."""


class DataUnavailableError(TfadvError, RuntimeError):
    """No source could provide the requested dataset (offline, not prepared, no local files)."""


class ZooError(TfadvError, RuntimeError):
    """A zoo entry is unknown, missing, corrupt, or fails its checksum."""


class InputError(TfadvError, ValueError):
    """Images handed to a model or attack break the contract: float NHWC batch of the right shape, finite, in [0, 1]."""


class TrainingDivergedError(TfadvError, RuntimeError):
    """Training produced NaN or Inf (a loss, or a generator's raw output): the run stops before saving anything."""
