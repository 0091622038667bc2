import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfadv.errors import ConfigError, ZooError
from tfadv.models import build_classifier, perturbation_model, unet
from tfadv.trainers.defense import CoTrainedTrainer, PGDAdversarialTrainer

from conftest import brightness_task, rewrite_keras_file


@pytest.fixture(scope="module")
def data():
    return brightness_task(96)


def co_trained_trainer():
    return CoTrainedTrainer(build_classifier("small_cnn", filters=[8, 16]),
                            perturbation_model(unet(filters=4), "thresholded", "linf", 0.1))


def test_one_step_updates_both_players(data):
    x, y = data
    trainer = co_trained_trainer()
    trainer(x[:1])
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3))
    c_before = [w.numpy().copy() for w in trainer.classifier.trainable_weights]
    g_before = [w.numpy().copy() for w in trainer.attacker.trainable_weights]
    logs = trainer.train_step((tf.constant(x[:32]), tf.constant(y[:32])))
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(c_before, trainer.classifier.trainable_weights))
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(g_before, trainer.attacker.trainable_weights))
    assert int(trainer.optimizer.iterations) == 1 and int(trainer.g_optimizer.iterations) == 1
    assert float(logs["linf_max"]) <= 0.1


def test_co_trained_validation_runs_the_generator_once_per_batch(data):
    """test_step computed the generator's loss, then ran the generator again for the attack metrics."""
    x, y = data
    trainer = co_trained_trainer()
    trainer(x[:1])
    generator = next(layer for layer in trainer.attacker.layers if isinstance(layer, keras.Model))
    first = next(layer for layer in generator.layers if isinstance(layer, keras.layers.Conv2D))
    calls, call = [], first.call
    first.call = lambda *args, **kwargs: calls.append(1) or call(*args, **kwargs)
    logs = trainer.test_step((tf.constant(x[:16]), tf.constant(y[:16])))
    assert len(calls) == 1 and float(logs["linf_max"]) <= 0.1 and float(logs["generator_loss"]) != 0.0


def test_save_reload_keeps_both_optimizers(data, tmp_path):
    x, y = data
    trainer = co_trained_trainer()
    trainer(x[:1])
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(5e-4))
    trainer.fit(x, y, batch_size=32, epochs=1, verbose=0)
    trainer.save(tmp_path / "co_trained.keras")
    reloaded = keras.saving.load_model(tmp_path / "co_trained.keras")
    assert int(reloaded.optimizer.iterations) == int(reloaded.g_optimizer.iterations) == 3
    assert float(reloaded.g_optimizer.learning_rate) == pytest.approx(5e-4)
    assert len(reloaded.optimizer.variables) == len(trainer.optimizer.variables) > 2  # slots restored, not skipped
    for a, b in zip(trainer.optimizer.variables + trainer.g_optimizer.variables,
                    reloaded.optimizer.variables + reloaded.g_optimizer.variables):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(reloaded(x[:4]), trainer(x[:4]), atol=1e-5)
    with pytest.raises(ConfigError, match="g_optimizer"):
        reloaded.compile(optimizer=keras.optimizers.Adam())


def test_refined_co_trained_trains_on_pgd_steps_from_the_generators_images(data, tmp_path):
    x, y = data
    x, y = tf.constant(x[:32]), tf.constant(y[:32])
    trainer = CoTrainedTrainer(build_classifier("small_cnn", filters=[8, 16]),
                               perturbation_model(unet(filters=4), "thresholded", "l2", 1.5),
                               refine_steps=2, norm="l2", eps=1.5)
    trainer(x[:1])
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3))
    logs = trainer.train_step((x, y))
    assert float(logs["l2_max"]) <= 1.5 * (1 + 1e-5)
    x_adv = trainer.adversarial(x, y)
    assert not np.allclose(x_adv, trainer.attacker(x))  # the PGD steps moved the generator's images
    assert float(tf.reduce_max(tf.norm(tf.reshape(x_adv - x, (32, -1)), axis=1))) <= 1.5 * (1 + 1e-5)
    assert float(tf.reduce_min(x_adv)) >= 0 and float(tf.reduce_max(x_adv)) <= 1
    assert float(trainer.evaluate(x, y, verbose=0, return_dict=True)["generator_loss"]) != 0.0
    trainer.save(tmp_path / "refined.keras")
    reloaded = keras.saving.load_model(tmp_path / "refined.keras")
    assert (reloaded.refine_steps, reloaded.norm, reloaded.eps) == (2, "l2", 1.5)
    with pytest.raises(ConfigError, match="needs the budget"):
        CoTrainedTrainer(trainer.classifier, trainer.attacker, refine_steps=1)


def test_generator_batch_updates_the_generator_on_the_first_images_and_attacks_the_whole_batch(data):
    x, y = data
    x, y = tf.constant(x[:16]), tf.constant(y[:16])
    other = tf.concat([x[:4], 1.0 - x[4:]], 0)  # the same first 4 images, different rest

    def one_step(images, generator_batch):
        keras.utils.set_random_seed(3)
        trainer = CoTrainedTrainer(build_classifier("small_cnn", filters=[8, 16]),
                                   perturbation_model(unet(filters=4), "thresholded", "linf", 0.1),
                                   generator_batch=generator_batch, refine_steps=1, norm="linf", eps=0.1,
                                   step_size=0.125)
        trainer(x[:1])
        trainer.compile(optimizer=keras.optimizers.SGD(0.1), g_optimizer=keras.optimizers.SGD(0.1))
        logs = trainer.train_step((images, y))
        return trainer, [w.numpy() for w in trainer.attacker.trainable_weights], logs

    trainer, g_a, logs = one_step(x, 4)
    _, g_b, _ = one_step(other, 4)
    for a, b in zip(g_a, g_b):  # images 4: did not reach the generator's update
        np.testing.assert_allclose(a, b, atol=1e-6)
    _, g_all_a, _ = one_step(x, None)
    _, g_all_b, _ = one_step(other, None)
    assert any(not np.allclose(a, b, atol=1e-6) for a, b in zip(g_all_a, g_all_b))  # ... as they do without it
    assert float(logs["linf_max"]) <= 0.1 + 1e-6
    # The classifier's images: one FGSM step of step_size from the generator's x_hat, for all 16 images.
    x_hat = trainer.attacker(x, training=False)
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        loss = keras.losses.sparse_categorical_crossentropy(y, trainer.classifier(x_hat, training=False),
                                                            from_logits=True)
    step = x_hat + 0.125 * tf.sign(tape.gradient(loss, x_hat))
    expected = tf.clip_by_value(tf.clip_by_value(step, x - 0.1, x + 0.1), 0.0, 1.0)
    np.testing.assert_allclose(trainer.adversarial(x, y), expected, atol=1e-5)
    assert (trainer.get_config()["generator_batch"], trainer.get_config()["step_size"]) == (4, 0.125)
    with pytest.raises(ConfigError, match="generator_batch"):
        CoTrainedTrainer(trainer.classifier, trainer.attacker, generator_batch=0)


def test_pgd_training_defends_and_evaluates_under_its_budget():
    keras.utils.set_random_seed(0)
    x, y = brightness_task(512, seed=1)
    x_test, y_test = brightness_task(256, seed=2)
    # L2 0.5 shifts a brightness by at most 0.018 (classes are 0.09 apart): a robust classifier exists.
    trainer = PGDAdversarialTrainer(build_classifier("small_cnn", filters=[8, 16]), "l2", 0.5, steps=3)
    trainer(x[:1])
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2))
    untrained = trainer.evaluate(x_test, y_test, verbose=0, return_dict=True)
    history = trainer.fit(x, y, batch_size=32, epochs=6, verbose=0)
    assert max(history.history["l2_max"]) <= 0.5
    logs = trainer.evaluate(x_test, y_test, verbose=0, return_dict=True)
    # Measured: clean 0.64-0.81, adversarial 0.48-0.56; untrained: 0.23 (a constant prediction PGD cannot move).
    assert logs["l2_max"] <= 0.5
    assert logs["clean_accuracy"] > 0.4, logs  # chance is 0.1
    assert logs["adv_accuracy"] < logs["clean_accuracy"], logs  # the attack finds errors
    assert logs["adv_accuracy"] > untrained["adv_accuracy"] + 0.15, (logs, untrained)  # training defended
    with pytest.raises(ConfigError, match="adversarial_fraction"):
        PGDAdversarialTrainer(build_classifier("small_cnn"), adversarial_fraction=2.0)


def bn_classifier():
    """images -> BatchNorm (momentum 0.5) -> logits: its moving mean after one step shows which batch it saw."""
    inputs = keras.Input((28, 28, 1))
    normalised = keras.layers.BatchNormalization(momentum=0.5, name="bn")(inputs)
    return keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(normalised)))


@pytest.mark.parametrize("method", ["co_trained", "pgd"])
def test_clean_and_adversarial_images_go_through_batchnorm_as_one_batch(method, data):
    x, y = data
    x, y = tf.constant(x[:32]), tf.constant(y[:32])
    if method == "co_trained":
        trainer = CoTrainedTrainer(bn_classifier(), perturbation_model(unet(filters=4), "thresholded", "linf", 0.1))
        trainer(x[:1])
        trainer.compile(optimizer=keras.optimizers.SGD(0.0), g_optimizer=keras.optimizers.SGD(0.0))
    else:
        trainer = PGDAdversarialTrainer(bn_classifier(), "linf", 0.1, steps=1)
        trainer(x[:1])
        trainer.compile(optimizer=keras.optimizers.SGD(0.0))
    x_adv = tf.fill(tf.shape(x), 0.9)
    trainer._classifier_step(x, x_adv, y)
    moving_mean = float(trainer.classifier.get_layer("bn").moving_mean[0])
    concatenated = 0.5 * float(tf.reduce_mean(tf.concat([x, x_adv], 0)))
    separate = 0.5 * (0.5 * 0.5 * float(tf.reduce_mean(x))) + 0.5 * 0.9  # clean batch, then adversarial batch
    assert moving_mean == pytest.approx(concatenated, rel=1e-5) and abs(concatenated - separate) > 0.1


def test_co_trained_classifier_trains_on_the_images_the_generator_step_optimised(data):
    """The generator is optimised with BatchNorm in training mode; its inference-mode images differ."""
    keras.utils.set_random_seed(3)
    x, y = data
    x, y = tf.constant(x[:32]), tf.constant(y[:32])
    trainer = co_trained_trainer()
    trainer(x[:1])
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-2))
    l2_mean = lambda x_hat: float(tf.reduce_mean(tf.norm(tf.reshape(x_hat - x, (32, -1)), axis=1)))  # noqa: E731
    optimised = l2_mean(trainer.attacker(x, training=True))  # what the generator step computes its loss on
    inference = l2_mean(trainer.attacker(x, training=False))
    logs = trainer.train_step((x, y))  # its attack metrics measure the images the classifier trained on
    assert float(logs["l2_mean"]) == pytest.approx(optimised, rel=1e-4)
    assert abs(inference - optimised) > 0.01 * optimised, (inference, optimised)


def test_a_nan_generator_stops_the_co_trained_defense(data):
    from tfadv.callbacks import FailOnNonFinite
    from tfadv.errors import TrainingDivergedError

    x, y = data
    trainer = co_trained_trainer()
    trainer(x[:1])
    generator = [layer for layer in trainer.attacker.layers if isinstance(layer, keras.Model)][0]
    kernel = [w for w in generator.trainable_weights if w.path.endswith("kernel")][-1]  # the output conv
    kernel.assign(tf.fill(kernel.shape, float("nan")))
    np.testing.assert_array_equal(trainer.attacker(x[:4]), x[:4])  # the budget hides it: an identity map
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3))
    with pytest.raises(TrainingDivergedError, match="generator's raw output holds .* NaN/Inf"):
        trainer.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[FailOnNonFinite()])
    assert int(trainer.optimizer.iterations) == 1  # stopped after the first batch


@pytest.mark.parametrize("experiment,settings", [("fashion_mnist_joint_defense_linf",  # method co_trained
                                                  {"settings.generator_kwargs": {"filters": 4}}),
                                                 ("fashion_mnist_pgd_defense_linf", {"settings.steps": 2})])
def test_defense_runs_write_a_classifier_that_exports_as_defended(experiment, settings, idx_dir, tmp_path):
    from tfadv import config as config_lib
    from tfadv import data as data_lib
    from tfadv import experiments, export, training, zoo

    cfg = config_lib.override(experiments.get_experiment(experiment), {
        "data.idx_dir": idx_dir, "data.batch_size": 32, "epochs": 1, "model_kwargs": {"filters": [8, 16]},
        **settings})
    workdir = str(tmp_path / "run")
    _, metrics = training.run_experiment(cfg, workdir, verbose=0)
    assert metrics["linf_max"] <= 0.1 and metrics["accuracy"] == metrics["clean_accuracy"]
    # The reported accuracy is the saved classifier's, recomputed here with numpy on the measured split.
    eval_ds, _ = data_lib.load("fashion_mnist", metrics["split"], batch_size=1000, idx_dir=idx_dir)
    saved = keras.saving.load_model(os.path.join(workdir, "model.keras"))
    x_eval, y_eval = (np.concatenate(parts) for parts in zip(*[(x.numpy(), y.numpy()) for x, y in eval_ds]))
    assert metrics["accuracy"] == pytest.approx(np.mean(np.argmax(saved(x_eval), -1) == y_eval), abs=1e-6)
    co_trained = cfg.method == "co_trained"
    assert os.path.exists(os.path.join(workdir, "attacker.keras")) == co_trained
    assert "attack_epoch001.png" in os.listdir(os.path.join(workdir, "images"))
    entry = export.export_run(workdir, "defended", zoo_dir=str(tmp_path / "zoo"))
    assert entry["kind"] == "defended_classifier"
    assert entry["metrics"]["accuracy"] == pytest.approx(metrics["accuracy"], abs=1e-6)
    assert zoo.load("defended", str(tmp_path / "zoo")).serve(tf.zeros((1, 28, 28, 1))).shape == (1, 10)
    registry = zoo.read_registry(str(tmp_path / "zoo"))
    if co_trained:  # the co-trained generator lands beside the classifier, measured against it
        generator = registry["defended_generator"]
        assert generator["target"] == "defended" and generator["co_trained"] and generator["kind"] == "perturbation"
        assert generator["metrics"]["linf_max"] <= 0.1 and generator["budget"] == {"norm": "linf", "eps": 0.1}
    else:
        assert set(registry) == {"defended"}


def brightness_classifier():
    """Nearest class brightness, by construction: right on the IDX task of conftest, and fragile.

    Class k's mean pixel is c_k = (25 k + 9.5) / 255; logits_k = 200 c_k m - 100 c_k^2 rank the classes by
    -(m - c_k)^2 for the mean pixel m. An L-inf shift of 0.1 crosses a boundary (0.049 away).
    """
    centers = (25.0 * np.arange(10) + 9.5) / 255.0
    inputs = keras.Input((28, 28, 1))
    dense = keras.layers.Dense(10)
    model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(inputs)))
    dense.set_weights([200.0 * centers[None].astype("float32"), (-100.0 * centers ** 2).astype("float32")])
    return model


def test_defense_report_has_every_attack_row(idx_dir, tmp_path):
    import functools

    from tfadv import defense_report, savedmodel, training, zoo

    zoo_dir = str(tmp_path / "zoo")
    classifiers = {"base": brightness_classifier(), "hardened": build_classifier("small_cnn", filters=[4, 8])}
    for name, kind in (("base", "classifier"), ("hardened", "defended_classifier")):
        with zoo.staging(name, zoo_dir) as stage:
            savedmodel.write_classifier(stage.path, classifiers[name])
            stage.commit(kind=kind, dataset="fashion_mnist", metrics={}, config={}, input_shape=[28, 28, 1])
    with zoo.staging("base_attack", zoo_dir) as stage:
        savedmodel.write_perturbation(stage.path, perturbation_model(unet(filters=4), "thresholded", "linf", 0.1),
                                      (28, 28, 1))
        stage.commit(kind="perturbation", dataset="fashion_mnist", metrics={}, config={}, target="base",
                     budget={"norm": "linf", "eps": 0.1}, input_shape=[28, 28, 1])
    with zoo.staging("hardened_generator", zoo_dir) as stage:
        savedmodel.write_perturbation(stage.path, perturbation_model(unet(filters=4), "thresholded", "linf", 0.1),
                                      (28, 28, 1))
        stage.commit(kind="perturbation", dataset="fashion_mnist", metrics={}, config={}, target="hardened",
                     co_trained=True, budget={"norm": "linf", "eps": 0.1}, input_shape=[28, 28, 1])
    with zoo.staging("base_attack_wide", zoo_dir) as stage:  # a larger budget: projected onto 0.1 in the table
        savedmodel.write_perturbation(stage.path, perturbation_model(unet(filters=4), "thresholded", "linf", 0.3),
                                      (28, 28, 1))
        stage.commit(kind="perturbation", dataset="fashion_mnist", metrics={}, config={}, target="base",
                     budget={"norm": "linf", "eps": 0.3}, input_shape=[28, 28, 1])
    wide = defense_report.transfer_attacks(zoo.read_registry(zoo_dir), "base", "linf", 0.1, zoo_dir)
    x = tf.random.stateless_uniform((4, 28, 28, 1), (1, 2))
    assert set(wide) == {"transfer:base_attack", "transfer:base_attack_wide@0.1"}
    assert float(tf.reduce_max(tf.abs(wide["transfer:base_attack_wide@0.1"](x) - x))) <= 0.1
    fresh = functools.partial(training.fresh_generator, norm="linf", eps=0.1, epochs=1, steps_per_epoch=1,
                              idx_dir=idx_dir, zoo_dir=zoo_dir)
    rows = defense_report.report(["hardened"], "base", "linf", 0.1, fresh_generator=fresh, zoo_dir=zoo_dir,
                                 idx_dir=idx_dir, pgd_steps=3, pgd_restarts=2, pgd_examples=20, attacks=["fgsm"])
    assert [row["classifier"] for row in rows] == ["base", "hardened"]
    for row in rows:
        co_trained = {"co_trained_generator"} if row["classifier"] == "hardened" else set()
        assert set(row) == {"classifier", "clean", "fresh_generator", "pgd3x2", "fgsm", "transfer:base_attack",
                            "transfer:base_attack_wide@0.1", "seconds"} | co_trained
    base = rows[0]
    assert base["clean"] > 0.9, base
    assert base["pgd3x2"] < base["clean"] - 0.5, base  # a PGD that returned x unchanged would score ~clean
    assert base["fgsm"] < base["clean"] - 0.5, base  # one step of 0.125 crosses the brightness boundaries too
    key = defense_report.record(rows, {"norm": "linf", "eps": 0.1}, zoo_dir)
    recorded = zoo.entry("hardened", zoo_dir)["metrics"][key]
    assert key == "robustness_linf_0.1" and recorded["pgd3x2"] == rows[1]["pgd3x2"]
    assert zoo.verify("hardened", zoo_dir)  # the artifact and its checksum are untouched
    fixed = defense_report.report(["hardened"], "base", "linf", 0.1, fresh_generator=None, zoo_dir=zoo_dir,
                                  idx_dir=idx_dir, fixed_only=True)
    assert set(fixed[1]) == {"classifier", "clean", "co_trained_generator", "transfer:base_attack",
                             "transfer:base_attack_wide@0.1", "seconds"}
    assert fixed[1]["transfer:base_attack"] == rows[1]["transfer:base_attack"]  # fixed attacks: the same figure
    alone = defense_report.report(["hardened"], "base", "linf", 0.1, fresh_generator=None, zoo_dir=zoo_dir,
                                  idx_dir=idx_dir, fixed_only=True, baseline_row=False)
    assert [row["classifier"] for row in alone] == ["hardened"]  # base: only the source of the transfer columns
    assert {k: v for k, v in alone[0].items() if k != "seconds"} == {k: v for k, v in fixed[1].items()
                                                                      if k != "seconds"}
    defense_report.record(fixed, {"norm": "linf", "eps": 0.1, "command": "again"}, zoo_dir, update=True)
    updated = zoo.entry("hardened", zoo_dir)["metrics"][key]
    assert updated["pgd3x2"] == rows[1]["pgd3x2"] and updated["settings"]["updates"][-1]["command"] == "again"
    # a PGD-only update: clean and PGD again, every other column kept, the old restart selection's mark gone
    old_table = zoo.entry("hardened", zoo_dir)["metrics"][key]
    zoo.add_metrics("hardened", {key: {**old_table, "pgd3x2": 1.0,
                                       "settings": {**old_table["settings"], "pgd_restart_selection": "lowest-loss"}}},
                    zoo_dir)
    again = defense_report.report(["hardened"], "base", "linf", 0.1, fresh_generator=None, zoo_dir=zoo_dir,
                                  idx_dir=idx_dir, pgd_steps=3, pgd_restarts=2, pgd_examples=20, pgd_only=True,
                                  baseline_row=False)
    assert set(again[0]) == {"classifier", "clean", "pgd3x2", "seconds"} and again[0]["pgd3x2"] < 1.0
    defense_report.record(again, {"norm": "linf", "eps": 0.1, "command": "pgd"}, zoo_dir, update=True)
    repgd = zoo.entry("hardened", zoo_dir)["metrics"][key]
    assert repgd["pgd3x2"] == again[0]["pgd3x2"] and "pgd_restart_selection" not in repgd["settings"]
    assert [u["command"] for u in repgd["settings"]["updates"]] == ["again", "pgd"]
    assert {k: v for k, v in repgd.items() if k not in ("pgd3x2", "clean", "settings")} == {
        k: v for k, v in updated.items() if k not in ("pgd3x2", "clean", "settings")}
    with pytest.raises(ConfigError, match="give one of them"):
        defense_report.report(["hardened"], "base", "linf", 0.1, fresh_generator=None, zoo_dir=zoo_dir,
                              fixed_only=True, pgd_only=True)
    table = defense_report.markdown(rows)
    assert table.splitlines()[0].startswith("| classifier | clean |") and "| hardened |" in table
    with pytest.raises(ConfigError, match="Unknown attack 'nope'"):
        defense_report.report(["hardened"], "base", "linf", 0.1, fresh_generator=fresh, zoo_dir=zoo_dir,
                              attacks=["nope"])
    with pytest.raises(ZooError, match="Unknown zoo entry 'nope'"):
        defense_report.report(["nope"], "base", "linf", 0.1, fresh_generator=fresh, zoo_dir=zoo_dir, idx_dir=idx_dir)


def test_fgsm_training_runs_and_the_guard_restores_the_best_epoch_when_pgd_accuracy_collapses(idx_dir, tmp_path):
    """The fast-adversarial-training recipe trains through the runner; its guard, fed a collapse, stops
    training and puts the best epoch's weights back."""
    from tfadv import experiments, training
    from tfadv.trainers.defense import RobustAccuracyGuard

    cfg = experiments.get_experiment("fashion_mnist_fgsm_defense_linf")
    cfg.data.idx_dir, cfg.data.batch_size, cfg.epochs, cfg.steps_per_epoch = idx_dir, 16, 2, 2
    cfg.model_kwargs = {"filters": [[4], [8]], "head": "gap"}
    trainer, metrics = training.run_experiment(cfg, str(tmp_path / "fgsm"), verbose=0)
    assert metrics["epochs_run"] == 2 and "guard_pgd_accuracy" in trainer.history.history
    assert trainer.steps == 1 and trainer.step_size == pytest.approx(0.125)

    guard = RobustAccuracyGuard(tf.zeros((4, 28, 28, 1)), tf.zeros((4,), tf.int32), "linf", 0.1)
    guard.set_model(trainer)
    from tfadv import attacks
    attacks._LOOPS._loops.clear()
    guard.robust_accuracy(), guard.robust_accuracy()  # epoch after epoch: one traced PGD loop, not one per epoch
    assert len(attacks._LOOPS._loops) == 1
    scripted = iter([0.6, 0.7, 0.3])  # epoch 2 is the best; epoch 3 collapses by 0.4 > 0.2
    guard.robust_accuracy = lambda: next(scripted)
    weights = []
    for epoch in range(3):
        trainer.stop_training = False
        trainer.classifier.set_weights([w + 1.0 for w in trainer.classifier.get_weights()])  # "training"
        weights.append(trainer.classifier.get_weights())
        guard.on_epoch_end(epoch, {})
    assert trainer.stop_training and guard.stopped_epoch == 2
    for restored, best in zip(trainer.classifier.get_weights(), weights[1]):
        np.testing.assert_array_equal(restored, best)


def test_trades_step_minimises_clean_cross_entropy_plus_beta_times_kl_to_its_kl_attack():
    """The TRADES loss recomputed in numpy from the classifier's logits on x and on the trainer's own attack."""
    from tfadv.losses import adversarial_loss
    from tfadv.trainers.defense import TRADESTrainer

    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(size=(8, 6, 6, 1)), tf.float32)
    y = tf.constant(rng.integers(0, 3, 8), tf.int32)
    classifier = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    trainer = TRADESTrainer(classifier, "linf", 0.1, steps=3, beta=4.0)
    trainer.compile(optimizer=keras.optimizers.SGD(0.0))  # no update: the loss is of these weights
    x_adv = trainer.adversarial(x, y)
    assert float(tf.reduce_max(tf.abs(x_adv - x))) <= 0.1 + 1e-6
    clean, adv = classifier(x).numpy().astype(np.float64), classifier(x_adv).numpy().astype(np.float64)
    log_p = clean - np.log(np.exp(clean).sum(-1, keepdims=True))
    log_q = adv - np.log(np.exp(adv).sum(-1, keepdims=True))
    kl = (np.exp(log_p) * (log_p - log_q)).sum(-1)
    expected = np.mean(-log_p[np.arange(8), y.numpy()] + 4.0 * kl)
    logs = trainer.train_step((x, y))
    np.testing.assert_allclose(float(logs["classifier_loss"]), expected, rtol=1e-5)
    assert kl.mean() > 1e-4  # the attack moved the prediction (a no-op attack would give KL 0)
    np.testing.assert_allclose(adversarial_loss("trades_kl", classifier(x_adv), y, clean_logits=classifier(x)),
                               -kl, rtol=1e-4, atol=1e-7)
    # Validation reports the same objective under the same name (it reported CE on x_adv: 3.39 against 8.42).
    trainer.reset_metrics()
    validation = trainer._measure(x, x_adv, y)
    np.testing.assert_allclose(float(validation["classifier_loss"]), expected, rtol=1e-5)


def test_madry_recipe_trains_on_adversarial_images_only_and_differs_from_the_mix_in_nothing_else():
    """Madry et al. train on PGD images alone: with adversarial_fraction 1.0 the clean images carry no gradient;
    the mix recipe (the recorded reference) keeps half its weight on them."""
    import dataclasses

    from tfadv import experiments
    from tfadv import tasks
    from tfadv.trainers.defense.base import mixed_cross_entropy

    madry = tasks.checked(experiments.get_experiment("fashion_mnist_madry_pgd_defense_linf"))
    mix = tasks.checked(experiments.get_experiment("fashion_mnist_pgd_defense_linf"))
    assert madry.settings["adversarial_fraction"] == 1.0 and mix.settings["adversarial_fraction"] == 0.5
    assert dataclasses.replace(madry, settings={**madry.settings, "adversarial_fraction": 0.5}) == mix
    assert madry.data.train_split == "train[:90%]" and madry.data.validation_split == "train[90%:]"
    keras.utils.set_random_seed(0)
    x, y = brightness_task(16)
    classifier = build_classifier("small_cnn", filters=[4, 8])
    x_adv = tf.clip_by_value(x + 0.1, 0.0, 1.0)

    def clean_gradient(fraction):
        trainer = PGDAdversarialTrainer(classifier, adversarial_fraction=fraction, norm="linf", eps=0.1)
        clean = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(clean)
            loss = mixed_cross_entropy(classifier(clean), classifier(x_adv), y, trainer.adversarial_fraction)
        return tape.gradient(loss, clean)

    assert float(tf.reduce_max(tf.abs(clean_gradient(1.0)))) == 0.0
    assert float(tf.reduce_max(tf.abs(clean_gradient(0.5)))) > 0.0


@pytest.mark.parametrize("experiment,key,value,message", [
    ("fashion_mnist_pgd_defense_linf", "settings.steps", 0, "settings.steps must be an int >= 1. Received: 0"),
    ("fashion_mnist_pgd_defense_linf", "settings.adversarial_fraction", 2.0, "adversarial_fraction must be in"),
    ("fashion_mnist_fgsm_defense_linf", "settings.step_size", 0.0, "settings.step_size must be > 0 or null"),
    ("fashion_mnist_fgsm_defense_linf", "settings.steps", 2,  # FGSM is one step
     "Unknown setting(s) settings.steps of defense method 'fgsm'"),
    ("fashion_mnist_trades_defense_linf", "settings.beta", -1.0, "settings.beta must be >= 0"),
    ("fashion_mnist_trades_defense_linf", "settings.adversarial_fraction", 0.5,  # its objective is not the mix
     "Unknown setting(s) settings.adversarial_fraction of defense method 'trades'"),
    ("fashion_mnist_joint_defense_linf", "settings.generator", "gan", "Unknown generator 'gan'"),
    ("fashion_mnist_joint_defense_linf", "settings.generator_loss", "targeted", "settings.generator_loss must be"),
    ("fashion_mnist_joint_defense_linf", "settings.refine_steps", -1, "settings.refine_steps must be >= 0"),
    ("fashion_mnist_joint_defense_linf", "settings.generator_batch", "32",
     "settings.generator_batch='32' does not match int | None"),
    ("fashion_mnist_joint_defense_linf", "settings.generator_loss_settings.kappa", -1.0,
     "settings.generator_loss_settings.kappa of loss 'cw' must be >= 0"),
    ("fashion_mnist_joint_defense_linf", "settings.generator_loss_settings", {"kappa": float("nan")},
     "settings.generator_loss_settings.kappa must be a finite number"),
    ("fashion_mnist_joint_defense_linf", "settings.generator_kappa", 2.0,  # its name before generator_loss_settings
     "Unknown setting(s) settings.generator_kappa of defense method 'co_trained'"),
])
def test_each_method_refuses_its_own_bad_settings_in_one_line(experiment, key, value, message):
    from tfadv import config as config_lib
    from tfadv import experiments, tasks

    cfg = config_lib.override(experiments.get_experiment(experiment), {key: value})
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        tasks.checked(cfg)
    assert "\n" not in str(caught.value)


def test_the_generators_loss_settings_follow_its_loss_and_the_old_method_name_is_refused_naming_the_new():
    from tfadv import config as config_lib
    from tfadv import experiments, tasks

    cfg = experiments.get_experiment("fashion_mnist_joint_defense_linf")
    assert cfg.method == "co_trained" and tasks.checked(cfg).settings["generator_loss_settings"] == {"kappa": 2.0}
    untargeted = config_lib.override(cfg, {"settings.generator_loss": "untargeted"})  # null: that loss's own
    assert tasks.checked(untargeted).settings["generator_loss_settings"] == {}
    with pytest.raises(ConfigError, match=re.escape("settings.generator_loss_settings.kappa of loss 'untargeted'; its "
                                                    "settings: none (switching loss, give its own: --set "
                                                    "settings.generator_loss_settings={} for its defaults)")):
        tasks.checked(config_lib.override(untargeted, {"settings.generator_loss_settings": {"kappa": 2.0}}))
    with pytest.raises(ConfigError, match=re.escape("Defense method 'joint' was renamed 'co_trained': --set "
                                                    "method=co_trained.")):
        tasks.checked(config_lib.override(cfg, {"method": "joint"}))


def test_a_trainer_saved_before_the_rename_loads_with_its_margin(data, tmp_path):
    """A ``.keras`` file of the trainer as saved before the rename (class ``JointAdversarialTrainer``, cw's margin
    as ``attack_kappa``) loads as today's class, with the margin in ``attack_loss_settings``."""

    x, _ = data
    trainer = CoTrainedTrainer(build_classifier("small_cnn", filters=[8, 16]),
                               perturbation_model(unet(filters=4), "thresholded", "linf", 0.1),
                               attack_loss_settings={"kappa": 3.0})
    trainer(x[:1])
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3))
    trainer.save(tmp_path / "new.keras")

    def as_before(config):
        assert config["registered_name"] == "tfadv>CoTrainedTrainer"
        config["class_name"] = "JointAdversarialTrainer"
        config["registered_name"] = "tfadv>JointAdversarialTrainer"
        del config["config"]["attack_loss_settings"]
        config["config"]["attack_kappa"] = 3.0

    rewrite_keras_file(tmp_path / "new.keras", tmp_path / "old.keras", as_before)
    reloaded = keras.saving.load_model(tmp_path / "old.keras")
    assert isinstance(reloaded, CoTrainedTrainer) and reloaded.attack_loss_settings == {"kappa": 3.0}
    np.testing.assert_allclose(reloaded(x[:4]), trainer(x[:4]), atol=1e-6)


@pytest.mark.parametrize("experiment,label,attack", [
    ("fashion_mnist_pgd3_defense_linf", "PGD adversarial training (Madry et al.)", "PGD-3, 50/50 mix"),
    ("fashion_mnist_madry_pgd_defense_linf", "PGD adversarial training (Madry et al.)", "PGD-7, adversarial only"),
    ("fashion_mnist_fgsm_defense_linf", "fast adversarial training (FGSM, Wong et al.)",
     "FGSM, random start, 50/50 mix"),
    ("fashion_mnist_trades_defense_linf", "TRADES (Zhang et al.)", "TRADES: PGD-10 on the KL"),
    ("fashion_mnist_joint_fgsm_defense_linf", "co-trained generator defense", "generator x1 on 32 images + PGD-1, 50/50 mix"),
])
def test_tables_name_each_method_and_its_training_attack_as_registered(experiment, label, attack):
    from tfadv import experiments
    from tfadv.trainers.defense import describe

    assert describe(experiments.get_experiment(experiment)) == (label, attack)


def test_the_task_builds_each_method_from_its_settings():
    """The trainer gets the method's own settings: PGD's steps, FGSM's default step of 1.25 eps, TRADES' beta,
    the co-trained defense's generator batch, its generator's loss settings and its generator's optimizer."""
    from tfadv import experiments
    from tfadv.tasks.defense import build_defense_trainer
    from tfadv.trainers.defense import defense_method

    def built(name, **settings):
        cfg = experiments.get_experiment(name)
        cfg.settings.update(settings)
        cfg.model_kwargs = {"filters": [[4]], "head": "gap"}
        return build_defense_trainer(cfg, (28, 28, 1), 10)

    assert built("fashion_mnist_pgd_defense_linf", steps=3).steps == 3
    assert built("fashion_mnist_pgd_defense_linf").steps == 7
    fgsm = built("fashion_mnist_fgsm_defense_linf")
    assert (fgsm.steps, fgsm.step_size) == (1, pytest.approx(0.125))
    assert built("fashion_mnist_trades_defense_linf", beta=2.0).beta == 2.0
    co_trained = built("fashion_mnist_joint_fgsm_defense_linf", generator_kwargs={"depth": 1, "filters": 2})
    assert (co_trained.generator_batch, co_trained.refine_steps, co_trained.step_size) == (32, 1, 0.125)
    assert (co_trained.attack_loss, co_trained.attack_loss_settings) == ("cw", {"kappa": 2.0})  # the method's margin
    assert built("fashion_mnist_joint_defense_linf", generator_loss_settings={"kappa": 5.0},
                 generator_kwargs={"depth": 1, "filters": 2}).attack_loss_settings == {"kappa": 5.0}
    cfg = experiments.get_experiment("fashion_mnist_joint_defense_linf")
    cfg.settings["generator_learning_rate"] = 5e-4
    optimizers = defense_method("co_trained").settings_of(cfg).optimizers()
    assert list(optimizers) == ["g_optimizer"] and float(optimizers["g_optimizer"].learning_rate) == pytest.approx(5e-4)


def test_training_cost_ratios_cancel_the_machines_drift_between_rounds(monkeypatch):
    """benchmark_defense times every experiment in each round and takes the median of same-round ratios: on a clock
    that runs each round slower than the one before, a step of half PGD-7's work still costs 0.50x (timing each
    experiment once, in turn, would put the drift into the ratio)."""
    from tfadv import timing
    from tfadv.benchmarks import defense as cost_benchmark

    clock = {"now": 0.0, "calls": 0}
    work = {"fashion_mnist_pgd_defense_linf": 1.0, "fashion_mnist_fgsm_defense_linf": 0.5}
    steps, rounds = 6, 3  # 2 steps of each experiment per round

    def fake_step(name, batch_size):
        def call():
            slowdown = 1 + clock["calls"] // (2 * steps // rounds)  # 1, 2, 3 in rounds 1, 2, 3
            clock["now"] += work[name] * slowdown
            clock["calls"] += 1
        return call

    monkeypatch.setattr(cost_benchmark, "training_step", fake_step)
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock["now"])
    costs = cost_benchmark.benchmark(list(work), batch_size=128, steps=steps, epoch_images=1280, rounds=rounds,
                                     log=lambda line: None)
    assert costs["fashion_mnist_fgsm_defense_linf"]["cost_ratio"] == 0.5
    assert costs["fashion_mnist_pgd_defense_linf"]["ms_per_step"] == 2000.0  # the median round's
    assert costs["fashion_mnist_fgsm_defense_linf"]["seconds_per_epoch"] == 10  # 1 s x 10 batches
