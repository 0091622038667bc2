"""The absl tools end to end, as a user runs them (subprocesses on tiny IDX data)."""

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from conftest import run_tool_cases

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tool(name, *args, check=True, **env_vars):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TFADV_OFFLINE": "1", **env_vars}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", f"{name}.py"), *args], env=env,
                          capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{name} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_train_export_evaluate_end_to_end(idx_dir, tmp_path):
    workdir, zoo_dir = str(tmp_path / "run"), str(tmp_path / "zoo")
    flagfile = tmp_path / "flags.txt"
    flagfile.write_text(f"--experiment=fashion_mnist_cnn\n--workdir={workdir}\n--set=data.idx_dir={idx_dir}\n")
    train = tool("train", f"--flagfile={flagfile}", "--epochs=1", "--set=data.batch_size=32",
                 "--set=model_kwargs.filters=[4,8]", TF_CPP_MIN_LOG_LEVEL="0")
    assert "TensorBoard: tensorboard --logdir" in train.stdout
    assert "from idx" in train.stderr  # the data source is logged
    # The image grid reads the eval split's first batch: an unshuffled pipeline must not cache partially.
    assert "did not fully read the dataset" not in train.stderr
    exported = tool("export", f"--workdir={workdir}", "--name=tiny_cnn", f"--zoo_dir={zoo_dir}")
    entry = json.loads(exported.stdout)["tiny_cnn"]
    run_metrics = json.load(open(os.path.join(workdir, "metrics.json")))
    assert entry["metrics"]["accuracy"] == pytest.approx(run_metrics["accuracy"], abs=1e-6)
    assert entry["config"]["data"]["idx_dir"] == idx_dir
    proc = tool("evaluate", "--zoo_name=tiny_cnn", f"--zoo_dir={zoo_dir}", f"--idx_dir={idx_dir}", CI="")
    assert "Evaluating the classifier\n1/1 - " in proc.stderr  # 48 test images: one batch of 256
    evaluated = json.loads(proc.stdout)
    assert evaluated["accuracy"] == pytest.approx(entry["metrics"]["accuracy"], abs=1e-6)
    assert evaluated["zoo_dir"] == zoo_dir and "budget" not in evaluated  # a classifier has no budget
    loaded = tf.saved_model.load(os.path.join(zoo_dir, entry["path"]))
    assert loaded.serve(tf.zeros((1, 28, 28, 1))).shape == (1, 10)
    again = tool("export", f"--workdir={workdir}", "--name=tiny_cnn", f"--zoo_dir={zoo_dir}", check=False)
    assert again.returncode == 2 and "already exists" in again.stderr

    # A perturbation generator against that zoo classifier, through the same three tools.
    attack_dir = str(tmp_path / "attack")
    tool("train", "--experiment=fashion_mnist_unet_l2", f"--workdir={attack_dir}", "--set=target=tiny_cnn",
         f"--set=data.idx_dir={idx_dir}", "--epochs=1", "--steps_per_epoch=2", "--set=data.batch_size=32",
         "--set=generator_kwargs.filters=4", TFADV_ZOO_DIR=zoo_dir)
    assert json.load(open(os.path.join(attack_dir, "metrics.json")))["optimizer_steps"] == 2
    assert "attack_epoch001.png" in os.listdir(os.path.join(attack_dir, "images"))
    entry = json.loads(tool("export", f"--workdir={attack_dir}", "--name=tiny_unet", f"--zoo_dir={zoo_dir}").stdout)
    entry = entry["tiny_unet"]
    assert entry["kind"] == "perturbation" and entry["target"] == "tiny_cnn"
    assert entry["budget"] == {"norm": "l2", "eps": 2.4}
    assert entry["metrics"]["l2_max"] <= 2.4 and entry["metrics"]["x_hat_range"][0] >= 0
    proc = tool("evaluate", "--zoo_name=tiny_unet", f"--zoo_dir={zoo_dir}", f"--idx_dir={idx_dir}", "--verbose=0", CI="")
    assert "Measuring the attack" not in proc.stderr
    evaluated = json.loads(proc.stdout)
    assert evaluated["adv_accuracy"] == pytest.approx(entry["metrics"]["adv_accuracy"], abs=1e-6)
    assert evaluated["zoo_dir"] == zoo_dir and evaluated["budget"] == {"norm": "l2", "eps": 2.4}
    from_run = json.loads(tool("evaluate", f"--workdir={attack_dir}", f"--idx_dir={idx_dir}", "--split=test[:8]",
                               TFADV_ZOO_DIR=zoo_dir).stdout)
    assert from_run["workdir"] == attack_dir and from_run["budget"] == {"norm": "l2", "eps": 2.4}
    attack = tf.saved_model.load(os.path.join(zoo_dir, "tiny_unet"))
    x_hat = attack.serve(tf.random.uniform((3, 28, 28, 1)))
    assert x_hat.shape == (3, 28, 28, 1) and float(tf.reduce_max(x_hat)) <= 1.0


BAD_INPUT = [
    (["train", "--experiment=nope", "--workdir=/tmp/x"], "--experiment=nope: unknown experiment"),
    (["train", "--experiment=nope"], "--experiment=nope: unknown experiment"),  # named before --workdir
    (["train", "--experiment=fashion_mnist_cnn", "--workdir=/tmp/x", "--set=epochz=2"], "Unknown config key 'epochz'"),
    (["train", "--experiment=fashion_mnist_cnn", "--workdir=/tmp/x", "--set=epochs=0"], "epochs must be > 0"),
    (["train", "--flagfile=/nonexistent/flags"], "Unable to open flagfile"),
    (["train", "--workdir=/tmp/x"], "exactly one of --experiment or --config"),
    (["evaluate", "--zoo_name=nope"], "Unknown zoo entry 'nope'"),
    (["evaluate", "--zoo_name=x", "--batch_size=0"], "batch_size"),
    (["evaluate_defense", "--defended=nope"], "Unknown zoo entry 'nope'"),
    (["train", "--experiment=fashion_mnist_unet_l2", "--workdir=/tmp/x", "--set=eps=0"], "eps must be finite and > 0"),
    (["train", "--experiment=fashion_mnist_unet_l2", "--workdir=/tmp/x", "--set=loss=targeted"],
     "needs target_class"),
    (["train", "--experiment=fashion_mnist_unet_joint", "--workdir=/tmp/x", "--set=magnitude_weight=0"],
     "nothing keeps x_hat close"),
    (["train", "--experiment=fashion_mnist_unet_l2", "--workdir=/tmp/x", "--set=data.dataset=nope"],
     "Unknown dataset 'nope'"),
    (["train", "--experiment=fashion_mnist_unet_l2", "--workdir=/tmp/x", "--set=eps=100"], "is absurd for l2"),
    (["train", "--experiment=fashion_mnist_joint_defense_linf", "--workdir=/tmp/x", "--set=settings.refine_steps=-1"],
     "settings.refine_steps must be >= 0"),
    (["train", "--experiment=fashion_mnist_pgd_defense_linf", "--workdir=/tmp/x", "--set=settings.refine_steps=1"],
     "Unknown setting(s) settings.refine_steps of defense method 'pgd'"),
    (["train", "--experiment=fashion_mnist_pgd_defense_linf", "--workdir=/tmp/x", "--set=method=nope"],
     "Unknown defense method 'nope'. Known: co_trained, fgsm, pgd, trades"),
    (["benchmark_defense", "--experiments=fashion_mnist_cnn"], "is a classifier experiment, not a defense"),
    (["train", "--experiment=fashion_mnist_cnn", "--workdir=/tmp/x", "--strategy=horovod"], "should be one of"),
    (["train", "--experiment=fashion_mnist_cnn", "--workdir=/tmp/x", "--strategy=multi_worker"],
     "needs the TF_CONFIG"),
    # absl's own errors come out in the same style as tfadv's.
    (["train", "--experiment=fashion_mnist_cnn", "--workdir=/tmp/x", "--epochz=3"],
     "Unknown command line flag 'epochz'"),
    (["train", "--experiment=fashion_mnist_cnn", "--workdir=/tmp/x", "--epochs=0"], "--epochs=0: "),
    (["train", "--experiment=fashion_mnist_cnn"], "--workdir is required"),
    (["train", "--experiment=fashion_mnist_cnn", "--workdir=/tmp/x", "extra"], "Unexpected positional arguments"),
    (["evaluate", "--zoo_name=x", "--batch_size=many"], "--batch_size=many: "),
    (["export", "--workdir=/tmp/x"], "--name"),
    (["stylize", "--content=a.png", "--style=b.png", "--output=c.png"], "exactly one of --saved_model or --zoo_name"),
]


@pytest.mark.parametrize("args,message", BAD_INPUT)
def test_bad_input_gets_one_clear_line_not_a_traceback(args, message):
    code, stderr = bad_input_results(args[0])[tuple(args[1:])]
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert code == 2, stderr
    assert len(errors) == 1 and message in errors[0], stderr
    assert "Traceback" not in stderr and "FATAL" not in stderr


_BAD_INPUT_RESULTS: dict = {}


def bad_input_results(name):
    """{args: (exit status, stderr)} for every bad-input case of tool ``name``, run in one process."""
    if name not in _BAD_INPUT_RESULTS:
        cases = [args[1:] for args, _ in BAD_INPUT if args[0] == name]
        _BAD_INPUT_RESULTS[name] = dict(zip(map(tuple, cases), run_tool_cases(name, cases)))
    return _BAD_INPUT_RESULTS[name]


def console_script(name):
    return os.path.join(os.path.dirname(sys.executable), name)


@pytest.mark.parametrize("command,own_flags", [
    (["train"], ["--experiment", "--config", "--set", "--workdir", "--epochs", "--steps_per_epoch", "--print_config",
                 "--list_experiments", "--strategy"]),
    (["tfadv-train"], ["--experiment", "--workdir", "--print_config", "--set"]),
    (["evaluate"], ["--zoo_name", "--zoo_dir", "--workdir", "--split", "--target"]),
    (["tfadv-evaluate"], ["--zoo_name", "--target"]),
    (["export"], ["--workdir", "--name", "--overwrite"]),
    (["stylize"], ["--saved_model", "--zoo_name", "--content", "--style", "--output"]),
    (["tfadv-stylize"], ["--saved_model", "--zoo_name"]),
    (["evaluate_defense"], ["--defended", "--undefended", "--norm", "--eps", "--record"]),
    (["tfadv-defend"], ["--model", "--workdir", "--method", "--norm", "--eps", "--autoattack_examples"]),
    (["tfadv-transfer"], ["--generators", "--experiment", "--surrogate", "--targets", "--defended", "--baselines",
                          "--square_queries", "--record"]),
])
def test_help_lists_the_tools_own_flags(command, own_flags):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    name = command[0]
    if name.startswith("tfadv-"):
        if not os.path.exists(console_script(name)):
            pytest.skip(f"{name} is not installed next to {sys.executable}")
        argv = [console_script(name)]
    else:
        argv = [sys.executable, os.path.join(ROOT, "tools", f"{name}.py")]
    proc = subprocess.run(argv + ["--help"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    listed = {line.split(":")[0].strip().replace("--[no]", "--") for line in proc.stdout.splitlines()
              if line.startswith("  --")}
    assert set(own_flags) <= listed, proc.stdout
    assert "--tpu" not in listed and "--logtostderr" not in listed  # absl's and TF's flags stay in --helpfull
    assert "USAGE:" not in proc.stdout  # the tool's docstring leads, not absl's bare usage line


def test_print_config_and_list_experiments(tmp_path):
    proc = tool("train", "--experiment=fashion_mnist_unet_l2", "--print_config", "--epochs=2", "--steps_per_epoch=5",
                "--set=data.batch_size=7", "--set=eps=1.5")
    cfg = json.loads(proc.stdout)
    assert (cfg["epochs"], cfg["steps_per_epoch"], cfg["data"]["batch_size"], cfg["eps"]) == (2, 5, 7, 1.5)
    assert cfg["kind"] == "perturbation" and cfg["norm"] == "l2" and "optimizer" in cfg
    path = tmp_path / "config.json"
    path.write_text(proc.stdout)
    assert json.loads(tool("train", f"--config={path}", "--print_config").stdout) == cfg
    listed = tool("train", "--list_experiments").stdout.splitlines()
    rows = {line.split()[0]: line.split()[1] for line in listed}
    assert rows["fashion_mnist_cnn"] == "classifier" and rows["fashion_mnist_unet_l2"] == "perturbation"
    assert rows["style_adain"] == "style" and len(rows) == len(listed)
    assert not [line for line in listed if "issue" in line.lower()]  # the project's tracker means nothing to users
    # Each recipe's first docstring paragraph, whole (it used to stop at the docstring's first line break).
    from tfadv import experiments

    about = " ".join(experiments.EXPERIMENTS["fashion_mnist_pgd_defense_linf"].__doc__.strip().split("\n\n")[0].split())
    assert next(line for line in listed if line.startswith("fashion_mnist_pgd_defense_linf ")).endswith(about)
    assert "\n" in experiments.EXPERIMENTS["fashion_mnist_pgd_defense_linf"].__doc__.strip().split("\n\n")[0]


def test_keras_progress_bars_only_on_a_terminal(monkeypatch):
    """A redirected log got a line per bar update (a demo log was 708 KB of bars): one line per epoch there."""
    import io

    from tfadv import cli

    monkeypatch.delenv("CI", raising=False)
    cli.flags.FLAGS.mark_as_parsed()
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert cli.fit_verbosity() == 2

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdout", Terminal())
    assert cli.fit_verbosity() == "auto"


def test_progress_bars_write_to_stderr_and_stay_quiet_in_ci_or_at_verbose_0(monkeypatch, capsys):
    from tfadv import progress

    monkeypatch.delenv("CI", raising=False)
    assert len(list(progress.bar(tf.data.Dataset.range(10).batch(3), label="Summing"))) == 4
    captured = capsys.readouterr()
    assert captured.out == "" and "Summing" in captured.err and "4/4" in captured.err
    monkeypatch.setenv("CI", "true")
    assert [int(x) for x in progress.bar(range(3), label="Quiet")] == [0, 1, 2]
    monkeypatch.setenv("CI", "")
    progress.set_verbosity(0)
    try:
        assert len(list(progress.bar(range(3), label="Quiet"))) == 3
    finally:
        progress.set_verbosity(1)
    assert "Quiet" not in capsys.readouterr().err


@pytest.mark.slow  # a benchmark script's smoke run (~15 s of training alone): speed figures live in benchmarks
def test_defense_benchmark_prints_a_row_per_experiment_and_records_it(tmp_path):
    from tfadv.trainers.defense import DEFENSES

    registry = json.load(open(os.path.join(ROOT, "zoo", "registry.json")))
    del registry["fashion_mnist_joint_defense_linf"]
    (tmp_path / "registry.json").write_text(json.dumps(registry))
    proc = tool("benchmark_defense", "--steps=1", "--batch_size=4", "--epoch_images=10", "--record",
                "--experiments=fashion_mnist_pgd_defense_linf,fashion_mnist_fgsm_defense_linf,"
                "fashion_mnist_joint_defense_linf", TFADV_ZOO_DIR=str(tmp_path))
    rows = [line.strip("| ").split(" | ") for line in proc.stdout.splitlines() if line.startswith("| fashion_mnist_")]
    assert [row[1] for row in rows] == [DEFENSES[m].label for m in ("pgd", "fgsm", "co_trained")]  # as registered
    assert [row[2] for row in rows] == ["PGD-7, 50/50 mix", "FGSM, random start, 50/50 mix", "generator x1, 50/50 mix"]
    assert rows[0][-1] == "1.00x" and all(float(row[3]) > 0 for row in rows)
    recorded = json.load(open(tmp_path / "registry.json"))
    for name, row in zip(("fashion_mnist_pgd_defense_linf", "fashion_mnist_fgsm_defense_linf"), rows):
        cost = recorded[name]["metrics"]["training_cost"]
        assert cost["ms_per_step"] == pytest.approx(float(row[3]), abs=0.5) and cost["method"] == row[1]
        assert cost["seconds_per_epoch"] == round(cost["ms_per_step"] / 1000 * 3)  # 10 images in batches of 4
        assert cost["cost_vs"] == "fashion_mnist_pgd_defense_linf" and "--record" in cost["settings"]["command"]
    assert "no zoo entry fashion_mnist_joint_defense_linf" in proc.stdout
    assert "fashion_mnist_joint_defense_linf" not in recorded


@pytest.mark.slow  # loads zoo SavedModels and the Fashion-MNIST test split (~1 min alone)
def test_perturbation_benchmark_reports_ssim_and_pgd_at_equal_time(tmp_path):
    figure = str(tmp_path / "side_by_side.png")
    proc = tool("benchmark_perturbation", "--entries=fashion_mnist_unet_l2", "--gen_examples=100",
                "--pgd_examples=20", "--pgd_steps=4", "--batch_size=20", "--notime_xla", "--step_timing_steps=2",
                f"--figure={figure}", "--figure_examples=3")
    lines = proc.stdout.splitlines()
    header = next(line for line in lines if line.startswith("| entry |")).strip("| ").split(" | ")
    row = dict(zip(header, next(line for line in lines if line.startswith("| fashion_mnist_unet_l2 |"))
                   .strip("| ").split(" | ")))
    # PGD steps in the generator's time = pgd_steps * PGD img/s / gen img/s (cells rounded as printed)
    fit = float(row["PGD steps in gen time"])
    assert fit == pytest.approx(4 * float(row["PGD img/s"]) / float(row["gen img/s"]), rel=0.05)
    assert row["equal-time PGD steps"] == ("1 (floor)" if fit < 1 else str(int(fit)))
    assert int(row["equal-time PGD steps"].split()[0]) < 4  # fewer steps than PGD-4: no stronger than it
    assert float(row["equal-time PGD adv acc"]) >= float(row["PGD-4 adv acc"])
    # a thresholded L2 2.4 perturbation changes the image visibly but keeps its structure
    assert 0.3 < float(row["gen SSIM"]) < 0.99 and 0.3 < float(row["PGD SSIM"]) < 0.99
    assert float(row["gen L2"]) == pytest.approx(2.4, abs=0.05)
    image = tf.io.decode_png(tf.io.read_file(figure))
    assert image.shape[2] == 3 and image.shape[0] > 3 * 112  # 3 rows of 28 px images upscaled x4, captioned
