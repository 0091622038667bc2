"""Shared plumbing of the absl tools in ``tools/``: experiment flags and clean error reporting.

The tools stay thin: flags pick an experiment and override fields; all logic
lives in the library.
"""

import logging
import sys

from absl import app, flags

from tfadv import config as config_lib
from tfadv import experiments
from tfadv.distribute import STRATEGIES
from tfadv.errors import ConfigError, TfadvError


RUNTIME_FLAGS = ("strategy", "jit_compile", "mixed_precision")  # shortcuts for --set FIELD=value


def define_experiment_flags() -> None:
    """--experiment / --config choose a config; --set overrides fields; --workdir is the run folder."""
    flags.DEFINE_string("experiment", None,
                        f"Named experiment: one of {', '.join(sorted(experiments.EXPERIMENTS))}.")
    flags.DEFINE_string("config", None, "JSON config file (e.g. a previous run's config.json) instead of "
                        "--experiment.")
    flags.DEFINE_multi_string("set", [], "Override a config field: --set epochs=3 --set data.batch_size=64 "
                              "(values parsed as JSON when possible).")
    flags.DEFINE_string("workdir", None, "Run folder for config.json, logs/, images/, backup/, model.keras.")
    flags.DEFINE_enum("strategy", None, list(STRATEGIES), "Where to train (default: as the config says): one "
                      "device, all local GPUs (mirrored), several machines from TF_CONFIG (multi_worker), or a TPU.")
    flags.DEFINE_bool("jit_compile", None, "XLA-compile the train step (default: as the config says).")
    flags.DEFINE_bool("mixed_precision", None, "mixed_float16 with loss scaling, for GPUs (default: as the config "
                      "says).")
    flags.register_multi_flags_validator(
        ["experiment", "config"], lambda v: bool(v["experiment"]) != bool(v["config"]),
        message="Give exactly one of --experiment or --config.")
    flags.register_validator("set", lambda values: all("=" in v for v in values),
                             message="--set values must look like key=value, e.g. --set epochs=3.")


def resolve_experiment(FLAGS):
    """The config named by the flags, with --set overrides applied and validated."""
    cfg = (experiments.get_experiment(FLAGS.experiment) if FLAGS.experiment
           else experiments.load_json(FLAGS.config))
    overrides = dict(config_lib.parse_override(s) for s in FLAGS.set)
    overrides.update({name: FLAGS[name].value for name in RUNTIME_FLAGS if FLAGS[name].value is not None})
    if overrides:
        cfg = config_lib.override(cfg, overrides)
    return cfg.validate() or cfg


def setup_logging() -> None:
    """INFO logs from tfadv (which data source was used, where outputs went) on stderr."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", force=True)
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)  # SavedModel writing is chatty at INFO
    logging.getLogger("tensorflow").setLevel(logging.WARNING)


def run(main) -> None:
    """``absl.app.run(main)``, printing tfadv's user errors as one line (exit status 2), not a traceback."""

    def guarded(argv):
        if len(argv) > 1:
            raise app.UsageError(f"Unexpected positional arguments: {' '.join(argv[1:])}")
        setup_logging()
        try:
            return main(argv)
        except TfadvError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)

    app.run(guarded)


__all__ = ["ConfigError", "define_experiment_flags", "resolve_experiment", "run", "setup_logging"]
