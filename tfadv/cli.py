"""Shared plumbing of the absl tools in ``tools/``: experiment flags, ``--help`` and clean error reporting.

The tools stay thin: flags pick an experiment and override fields; all logic
lives in the library. Every tool's errors, absl's (unknown flag, bad value)
and tfadv's (``TfadvError``), print as one line ``Error: ...`` with exit
status 2; ``--help`` lists the tool's own flags, without loading TensorFlow.
Importing this module (the tools do so first) keeps their start quiet: see
:func:`tfadv.quiet.quiet_startup`.
"""

import json
import logging
import re
import sys

from absl import app, flags

from tfadv import config as config_lib
from tfadv import progress, quiet
from tfadv.errors import ConfigError, TfadvError

# Neither this module nor the ones above import TensorFlow or Keras: the tools define their flags and answer --help
# with absl alone, and import the rest of the library inside main().
STRATEGIES = config_lib.STRATEGIES
RUNTIME_FLAGS = ("strategy", "jit_compile", "mixed_precision")  # shortcuts for --set runtime.FIELD=value
SCHEDULE_FLAGS = ("epochs", "steps_per_epoch")  # shortcuts for a quick run
USAGE_STATUS = 2  # what every tool exits with on a bad flag, config or input

VERBOSE = flags.DEFINE_integer("verbose", 1, "0: no progress bars (nor Keras' per-step bars when training); 1: "
                               "progress bars on stderr. Bars are also off when the environment sets CI.",
                               lower_bound=0)


def define_experiment_flags() -> None:
    """--experiment / --config choose a config; --set overrides fields; --workdir is the run folder.

    Tools calling this should ``flags.adopt_module_key_flags(cli)`` so that
    ``--help`` lists these flags as theirs.
    """
    flags.DEFINE_string("experiment", None, "Named experiment (--list_experiments lists and describes them).")
    flags.DEFINE_string("config", None, "JSON config file (e.g. a previous run's config.json) instead of "
                        "--experiment.")
    flags.DEFINE_multi_string("set", [], "Override a config field: --set epochs=3 --set data.batch_size=64 "
                              "--set steps_per_epoch=20 (dotted keys for nested fields, values parsed as JSON "
                              "when possible; --print_config shows every field).")
    flags.DEFINE_string("workdir", None, "Run folder for config.json, logs/, images/, backup/, model.keras.")
    flags.DEFINE_integer("epochs", None, "Shortcut for --set epochs=N.", lower_bound=1)
    flags.DEFINE_integer("steps_per_epoch", None, "Shortcut for --set steps_per_epoch=N: cap on the batches of "
                         "an epoch (a quick run).", lower_bound=1)
    flags.DEFINE_enum("strategy", None, list(STRATEGIES), "Where to train (default: as the config says): one "
                      "device, all local GPUs (mirrored), several machines from TF_CONFIG (multi_worker), or a TPU.")
    flags.DEFINE_bool("jit_compile", None, "XLA-compile the train step (default: as the config says).")
    flags.DEFINE_bool("mixed_precision", None, "mixed_float16 with loss scaling, for GPUs (default: as the config "
                      "says).")
    flags.DEFINE_bool("print_config", False, "Print the resolved config (--set and shortcut flags applied) as "
                      "JSON and exit without training.")
    flags.DEFINE_bool("list_experiments", False, "List the named experiments (name, kind, description) and exit.")
    flags.register_validator(  # registered first: an unknown name is named before any other complaint
        "experiment", _known_experiment, message="unknown experiment (--list_experiments lists them)")
    flags.register_multi_flags_validator(
        ["experiment", "config", "list_experiments"],
        lambda v: v["list_experiments"] or bool(v["experiment"]) != bool(v["config"]),
        message="Give exactly one of --experiment or --config (--list_experiments lists the experiments).")
    flags.register_validator("set", lambda values: all("=" in v for v in values),
                             message="--set values must look like key=value, e.g. --set epochs=3.")


def _known_experiment(name) -> bool:
    # set_default (tools/attack.py) checks the default before parsing, which checks it again after --help has exited:
    # the experiments, and TensorFlow with them, are imported then.
    if name is None or not flags.FLAGS.is_parsed():
        return True
    from tfadv import experiments

    return name in experiments.EXPERIMENTS


def fit_verbosity():
    """Keras ``fit(verbose=...)`` for --verbose and CI: 0 silent; live bars ("auto") only on a terminal; one line
    per epoch (2) in CI or when output goes to a file, where each bar update would be a line of the log."""
    if VERBOSE.value == 0:
        return 0
    terminal = hasattr(sys.stdout, "isatty") and sys.stdout.isatty()  # Keras writes its bars to stdout
    return "auto" if progress.enabled() and terminal else 2


def resolve_experiment(FLAGS):
    """The config named by the flags, with --set and shortcut-flag overrides applied, validated and checked by
    its task (the names it gives; a defense's settings completed), as a run records it."""
    from tfadv import experiments, tasks

    cfg = (experiments.get_experiment(FLAGS.experiment) if FLAGS.experiment
           else experiments.load_json(FLAGS.config))
    overrides = dict(config_lib.parse_override(s) for s in FLAGS.set)
    overrides.update({f"runtime.{name}": FLAGS[name].value for name in RUNTIME_FLAGS
                      if FLAGS[name].value is not None})
    overrides.update({name: FLAGS[name].value for name in SCHEDULE_FLAGS if FLAGS[name].value is not None})
    if overrides:
        cfg = config_lib.override(cfg, overrides)
    return tasks.checked(cfg)


def config_json(cfg) -> str:
    """A config as the indented JSON that ``--config`` reads back."""
    return json.dumps(config_lib.to_dict(cfg), indent=2, sort_keys=True)


def print_json(result: dict, output: str | None = None) -> None:
    """Prints a tool's result as indented JSON on stdout, and writes the same JSON to ``output`` if given."""
    print(json.dumps(result, indent=2))
    if output:
        with open(output, "w") as f:
            json.dump(result, f, indent=2)


def experiment_list() -> str:
    """One line per named experiment: name, kind and the first paragraph of its recipe's docstring, whole."""
    from tfadv import experiments

    lines = []
    for name in sorted(experiments.EXPERIMENTS):
        factory = experiments.EXPERIMENTS[name]
        about = " ".join((factory.__doc__ or "").strip().split("\n\n")[0].split())
        lines.append(f"{name:<42} {factory().kind:<12} {about}".rstrip())
    return "\n".join(lines)


def setup_logging() -> None:
    """INFO logs from tfadv (which data source was used, where outputs went) on stderr."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", force=True)
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)  # SavedModel writing is chatty at INFO
    logging.getLogger("tensorflow").setLevel(logging.WARNING)


def fail(message) -> None:
    """Exits with status 2 after printing ``Error: message`` as one line on stderr: every tool's error style."""
    print(f"Error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(USAGE_STATUS)


def _parse_flags(argv):
    """absl's flag parsing, with its errors in tfadv's style and ``--help`` exiting 0."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        # absl joins every failing validator's message with newlines, in registration order: the first is the
        # one to fix first. Multi-flag validators prefix it with every flag's value ("flags a=None, b=None: ..."),
        # single-flag ones with "flag --name=value: ", flagfile errors with "ERROR::".
        first = str(e).split("\n")[0]
        message = re.sub(r"^flag (--\S+): ", r"\1: ", re.sub(r"^(ERROR:+ *|flags [^:]*: )", "", first)).rstrip(".")
        fail(f"{message}. Run with --help to list the flags.")
    except UnicodeDecodeError as e:  # a binary --flagfile
        fail(f"A flag file is not text ({e.reason} at byte {e.start}); --flagfile takes a text file of --flag=value "
             "lines.")
    except OSError as e:  # a --flagfile that cannot be read
        fail(f"Cannot read {e.filename or 'a flag file'}: {e.strerror or e}.")
    except SystemExit as e:  # --help / --helpfull: absl printed the help and exits 1; asking for help is no error
        sys.exit(0 if e.code == 1 else e.code)


def _adopt_tool_flags(main) -> None:
    """Makes ``--help`` list the tool's own flags however it is started.

    absl's ``--help`` shows the key flags of the module named ``sys.argv[0]``:
    the tool itself under ``python tools/x.py``, but the console-script wrapper
    under ``tfadv-x``, which defines none. Registers the tool module's key
    flags (and its docstring) for that name too.
    """
    module = main.__module__
    for flag in flags.FLAGS.get_key_flags_for_module(module) + [flags.FLAGS["verbose"]]:
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    main_module = sys.modules["__main__"]
    if not main_module.__doc__:
        main_module.__doc__ = sys.modules[module].__doc__


def run(main) -> None:
    """``absl.app.run(main)`` with one error style: ``Error: ...`` on one line, exit status 2, no traceback."""

    def guarded(argv):
        if len(argv) > 1:
            fail(f"Unexpected positional arguments: {' '.join(argv[1:])} (flags look like --name=value).")
        setup_logging()
        progress.set_verbosity(VERBOSE.value)
        try:
            return main(argv)
        except (TfadvError, app.UsageError) as e:
            fail(e)
        except OSError as e:  # a full disk, a missing permission: the environment, not a bug to trace
            fail(f"{e.strerror or e}" + (f": {e.filename}" if e.filename else "") + ".")

    _adopt_tool_flags(main)
    app.run(guarded, flags_parser=_parse_flags)


quiet.quiet_startup()

__all__ = ["ConfigError", "config_json", "define_experiment_flags", "experiment_list", "fail", "fit_verbosity",
           "print_json", "resolve_experiment", "run", "setup_logging"]
