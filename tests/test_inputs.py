"""Bad input gets a clear error naming the problem: library calls, zoo models, and plain-TensorFlow serving."""

import numpy as np
import pytest
import tensorflow as tf

from tfadv import savedmodel, zoo
from tfadv.attacks import pgd
from tfadv.universal_attacks import deepfool
from tfadv.budgets import check_budget
from tfadv.errors import ConfigError, InputError
from tfadv.inputs import check_images
from tfadv.models import build_classifier

GOOD = np.full((2, 28, 28, 1), 0.5, np.float32)
NAN = GOOD.copy()
NAN[1, 3, 4, 0] = np.nan
INF = GOOD.copy()
INF[0, 0, 0, 0] = -np.inf

BAD_IMAGES = [
    (GOOD[0], "rank 4"),                                   # one image without its batch axis
    (GOOD[..., 0], "rank 4"),                              # no channel axis
    (np.zeros((2, 28, 28, 3), np.float32), "1 channel(s); got 3"),
    (np.zeros((2, 32, 32, 1), np.float32), "28x28 pixels; got 32x32"),
    ((GOOD * 255).astype(np.uint8), "divide by 255"),
    (np.zeros((2, 28, 28, 1), np.int32), "dtype int32"),
    (np.zeros((0, 28, 28, 1), np.float32), "empty batch"),
    (NAN, "NaN or infinite"),
    (INF, "NaN or infinite"),
    (GOOD * 255, "0-255 pixels: divide by 255"),
    (GOOD - 1, "must lie in [0, 1]"),
    ("a string", "float images"),
]


@pytest.mark.parametrize("images,message", BAD_IMAGES)
def test_check_images_names_the_problem(images, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        check_images(images, (28, 28, 1))


def test_check_images_accepts_and_casts_good_batches():
    out = check_images(GOOD.astype(np.float64), (28, 28, 1))
    assert out.dtype == tf.float32 and out.shape == (2, 28, 28, 1)
    assert check_images(tf.zeros((1, 5, 7, 3))).shape == (1, 5, 7, 3)  # any size when no shape is asked


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    zoo_dir = str(tmp_path_factory.mktemp("zoo"))
    model = build_classifier("small_cnn", filters=[4, 8])
    with zoo.staging("tiny", zoo_dir) as stage:
        savedmodel.write_classifier(stage.path, model)
        stage.commit(kind="classifier", dataset="fashion_mnist", metrics={"accuracy": 0.5}, config={},
                     input_shape=[28, 28, 1])
    return zoo_dir, model


@pytest.mark.parametrize("images,message", BAD_IMAGES)
def test_zoo_models_refuse_bad_batches_before_tensorflow_sees_them(served, images, message):
    loaded = zoo.load("tiny", served[0])
    with pytest.raises(InputError, match="tiny: images"):
        loaded.serve(images)
    assert loaded.serve(GOOD).shape == (2, 10)


@pytest.mark.parametrize("images,message", [(np.zeros((0, 28, 28, 1), np.float32), "empty batch"),
                                            (NAN, "NaN or infinite"), (GOOD * 255, "values above 1"),
                                            (GOOD - 1, "values below 0"),
                                            (np.where(np.isnan(NAN), np.nan, GOOD * 255), "NaN or infinite")])
def test_plain_tensorflow_serving_refuses_bad_values_in_graph(served, images, message):
    loaded = tf.saved_model.load(zoo.path_of("tiny", served[0]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        loaded.serve(tf.constant(images))
    np.testing.assert_allclose(loaded.serve(GOOD), served[1](GOOD), atol=1e-5)


def test_plain_tensorflow_serving_names_the_expected_shape(served):
    loaded = tf.saved_model.load(zoo.path_of("tiny", served[0]))
    with pytest.raises((ValueError, TypeError), match=r"28, 28, 1"):
        loaded.serve(tf.zeros((2, 28, 28, 3)))


def test_attacks_refuse_bad_batches_and_labels(served):
    model = served[1]
    with pytest.raises(InputError, match="NaN"):
        pgd(model, NAN, [0, 1], eps=0.1)
    with pytest.raises(InputError, match="labels must be one int per image"):
        pgd(model, GOOD, [0, 1, 2], eps=0.1)
    with pytest.raises(InputError, match="rank 4"):
        deepfool(model, GOOD[0], num_classes=10)


@pytest.mark.parametrize("norm,eps,message", [
    ("linf", 0.0, "finite and > 0"), ("l2", -1.0, "finite and > 0"), ("l2", float("nan"), "finite and > 0"),
    ("linf", 1.0, "absurd"), ("l2", 28.0, "absurd"), ("l3", 1.0, "norm must be one of"), ("l2", "big", "number"),
])
def test_budgets_refuse_non_positive_and_absurd_values(norm, eps, message):
    with pytest.raises(ConfigError, match=message):
        check_budget(norm, eps, (28, 28, 1))
    assert check_budget("l2", 27.9, (28, 28, 1)) == 27.9
