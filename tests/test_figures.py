"""Figures (tfadv.figures) and reports (tfadv.report): layout, labels, failure marks, links."""

import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from tfadv import figures, report
from tfadv.data import get_spec
from tfadv.data.images import write_png

NAMES = get_spec("fashion_mnist").class_names
RED = np.array(figures.RED, np.float32)


def is_red(pixels):
    return np.all(np.isclose(pixels, RED), axis=-1)


def batch(n=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.2, 0.8, (n, 28, 28, 1)).astype("float32")
    x_hat = np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1).astype("float32")
    return x, x_hat


def test_text_masks_are_coverage_boxes_that_grow_with_the_text():
    mask = figures.text_mask("T-shirt/top (0)", scale=2)
    assert mask.dtype == np.float32 and mask.shape == figures.text_size("T-shirt/top (0)", 2)
    assert mask.min() == 0.0 and mask.max() == 1.0 and ((mask > 0) & (mask < 1)).any()  # anti-aliased edges
    assert mask[:, :3].any() and mask[:, -3:].any()  # the box is as wide as the text (give or take its bearings)
    heights = {figures.text_size(s, 2)[0] for s in ("", "a", "Ag|", "(0)", "FAILED")}
    assert len(heights) == 1  # one line height per scale: lines align whatever they hold
    widths = [figures.text_size("x" * n, 2)[1] for n in range(4)]
    assert widths[0] == 0 and widths == sorted(widths) and len(set(widths)) == 4
    small, large = figures.text_size("Coat", 1), figures.text_size("Coat", 2)
    assert large[0] > small[0] and large[1] > small[1] and figures.font_px(2) == 2 * figures.FONT_PX
    assert figures.font_px(1) == figures.MIN_FONT_PX and figures.line_height(2) > large[0]
    assert figures.text_mask("").shape == (figures.text_size("")[0], 0)


def test_text_keeps_its_characters():
    def drawn(text):
        return figures.text_mask(text, 2)

    assert not np.array_equal(drawn("("), drawn("<")) and not np.array_equal(drawn(")"), drawn(">"))
    assert not np.array_equal(drawn("[0]"), drawn("(0)"))
    assert not np.array_equal(drawn("a"), drawn("A"))  # lower case is lower case
    left, right = drawn("("), drawn(")")
    assert left.shape == right.shape and np.allclose(left, right[:, ::-1], atol=0.5)  # mirror images


def test_draw_text_changes_pixels_inside_its_box_only():
    canvas = np.full((60, 200, 3), 0.5, np.float32)
    h, w = figures.text_size("true: Coat (4)", 2)
    figures.draw_text(canvas, "true: Coat (4)", 10, 20, figures.RED, 2)
    changed = np.any(canvas != 0.5, axis=-1)
    rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
    assert rows.min() >= 10 and rows.max() < 10 + h and cols.min() >= 20 and cols.max() < 20 + w
    assert changed.sum() > 50 and is_red(canvas).sum() > 20  # solid strokes are the colour itself
    assert canvas.dtype == np.float32 and canvas.min() >= 0 and canvas.max() <= 1
    assert np.all(canvas[changed][:, 1] <= 0.5)  # blended towards red: green only falls
    edge = np.ones((8, 8, 3), np.float32)
    figures.draw_text(edge, "Ankle boot", -5, -7, scale=2)  # clipped at every edge, no error
    assert edge.min() < 1
    upright = np.ones((w + 4, h + 4, 3), np.float32)
    figures.draw_text_upright(upright, "true: Coat (4)", 2, 2, scale=2)
    assert np.allclose(upright[2:2 + w, 2:2 + h, 0], 1 - np.rot90(figures.text_mask("true: Coat (4)", 2)), atol=1e-6)


def test_fashion_mnist_has_its_ten_class_names():
    assert len(NAMES) == 10 and NAMES[0] == "T-shirt/top" and NAMES[9] == "Ankle boot"
    assert figures.class_name(NAMES, 4) == "Coat" and figures.class_name((), 4) == "4"


def test_attack_figure_layout_panels_and_failure_frames():
    x, x_hat = batch(3)
    x_hat[1] = x[1]  # no perturbation at all: its delta panel must be uniformly grey
    labels, clean, adv = np.array([0, 9, 4]), np.array([0, 9, 4]), np.array([6, 9, 2])  # row 1 not fooled
    fig = figures.attack_figure(x, x_hat, labels, clean, adv, NAMES, factor=4, scale=2)
    assert fig.dtype == np.float32 and fig.ndim == 3 and fig.shape[2] == 3
    assert fig.min() >= 0 and fig.max() <= 1
    # Geometry: 3 rows of 112 px panels (28 x 4) plus head and foot, 3 panels + labels across.
    pad, gap, line_h = 8, 6, figures.line_height(2)
    row_h = max(112, 5 * line_h) + 2 * pad
    assert fig.shape[0] == (line_h + pad) + 3 * row_h + (line_h + pad)  # column titles, rows, footnote
    assert fig.shape[1] == 3 * 112 + 3 * gap + figures.text_size("on x_hat: Ankle boot", 2)[1] + 2 * pad
    head = line_h + pad
    for i in range(3):
        top = head + i * row_h + pad
        x_panel = fig[top: top + 112, pad: pad + 112, 0]
        assert np.allclose(x_panel, np.repeat(np.repeat(x[i, :, :, 0], 4, 0), 4, 1))  # nearest x4, not resampled
        hat_left = pad + 2 * (112 + gap)
        assert np.allclose(fig[top: top + 112, hat_left: hat_left + 112, 0],
                           np.repeat(np.repeat(x_hat[i, :, :, 0], 4, 0), 4, 1), atol=1e-6)
    delta_panel = fig[head + row_h + pad: head + row_h + pad + 112, pad + 112 + gap: pad + 2 * 112 + gap]
    assert np.allclose(delta_panel, 0.5)
    band = [fig[head + i * row_h: head + (i + 1) * row_h] for i in range(3)]
    assert not is_red(band[0]).any() and not is_red(band[2]).any()  # fooled rows: no red at all
    frame = is_red(band[1])
    assert frame[1:1 + figures.FAILED_FRAME, 1:-1].all() and frame[-1 - figures.FAILED_FRAME:-1, 1:-1].all()
    assert frame[:, 1:1 + figures.FAILED_FRAME][1:-1].all()
    inner = frame[8:-8, 8:-8]
    assert inner.sum() > 100  # the word FAILED, in red, inside the frame


def test_attack_figure_targeted_failure_is_missing_the_target():
    x, x_hat = batch(2)
    fig = figures.attack_figure(x, x_hat, [0, 1], [0, 1], [7, 3], NAMES, target_class=7)
    half = fig.shape[0] // 2
    assert not is_red(fig[:half]).any() and is_red(fig[half:]).any()


def test_attack_figure_refuses_mismatched_batches():
    x, x_hat = batch(2)
    with pytest.raises(ValueError, match="one shape"):
        figures.attack_figure(x, x_hat[:1], [0, 1], [0, 1], [1, 0])


def test_misclassified_figure_shows_only_mistakes_with_red_predictions():
    x, _ = batch(4)
    assert figures.misclassified_figure(x, [1, 2, 3, 4], [1, 2, 3, 4]) is None
    fig = figures.misclassified_figure(x, [1, 2, 3, 4], [1, 5, 3, 0], NAMES, cols=4, title="")
    # Two tiles side by side: each as wide as its longest caption (at scale 2) plus padding.
    widest = max(figures.text_size(s, 2)[1] for s in ("true: Pullover", "pred: Sandal", "true: Coat",
                                                      "pred: T-shirt/top"))
    line_h = figures.line_height(2)
    assert fig.shape == (112 + 2 * line_h + 16, 2 * (max(112, widest) + 16), 3)
    assert np.allclose(fig[8:120, 8:120, 0], np.repeat(np.repeat(x[1, :, :, 0], 4, 0), 4, 1))
    red_rows = np.flatnonzero(is_red(fig).any(1))
    assert red_rows.min() >= 112 + 8 + line_h  # red is the second caption line (the prediction) only


def test_confusion_figure_shades_by_row_and_writes_counts():
    matrix = np.array([[90, 10, 0], [0, 100, 0], [50, 0, 50]])
    fig = figures.confusion_figure(matrix, ["a", "b", "c"], cell=40, title="")
    dark, white = np.array((0.05, 0.18, 0.5), np.float32), np.ones(3, np.float32)
    corner = lambda i, j: fig[fig.shape[0] - 8 - (3 - i) * 40 + 2, fig.shape[1] - 8 - (3 - j) * 40 + 2]  # noqa: E731
    assert np.allclose(corner(1, 1), dark) and np.allclose(corner(1, 0), white)
    assert np.allclose(corner(2, 0), corner(2, 2)) and corner(2, 0)[0] < 1 and corner(2, 0)[0] > dark[0]
    with pytest.raises(ValueError, match="square"):
        figures.confusion_figure(np.zeros((2, 3)))


def test_perturbation_figure_centres_zero_on_grey():
    u = np.zeros((28, 28, 1), np.float32)
    u[:14] = 0.1
    fig = figures.perturbation_figure(u, factor=8, title="")
    assert np.allclose(fig[8 + 20 * 8, 8 + 100], 0.5)  # U = 0 rows: grey
    assert np.allclose(fig[8 + 4 * 8, 8 + 100], 1.0)  # the largest positive value: white


def test_png_and_tensorboard_outputs(tmp_path):
    x, x_hat = batch(2)
    fig = figures.attack_figure(x, x_hat, [0, 1], [0, 1], [2, 1], NAMES)
    path = write_png(str(tmp_path / "a" / "fig.png"), fig)
    decoded = tf.io.decode_png(tf.io.read_file(path)).numpy()
    assert decoded.shape == fig.shape and decoded.dtype == np.uint8
    assert np.array_equal(decoded, np.round(fig * 255).astype(np.uint8))
    figures.log_to_tensorboard(str(tmp_path / "logs"), {"attack": fig}, step=3)
    events = [os.path.join(tmp_path / "logs", f) for f in os.listdir(tmp_path / "logs")]
    tags = [(v.tag, e.step) for e in tf.compat.v1.train.summary_iterator(events[0]) for v in e.summary.value]
    assert ("attack", 3) in tags


def test_report_has_table_links_existing_pngs_and_provenance(tmp_path):
    x, x_hat = batch(2)
    columns = [("attack", "attack"), ("adv_accuracy", "adv. accuracy"), ("images_per_s", "images/s")]
    rows = [{"attack": "generator", "adv_accuracy": 0.0025, "images_per_s": 3512.3},
            {"attack": "PGD-40 | first 500", "adv_accuracy": 0.0}]
    path = report.write_report(str(tmp_path / "rep"), "Attack", command="tfadv-attack --quick",
                               data_source="fashion_mnist[test] from idx:/x",
                               tables=[("Attacks at L2 <= 2.4", columns, rows)],
                               figures={"attack": figures.attack_figure(x, x_hat, [0, 1], [0, 1], [2, 1]),
                                        "skipped": None},
                               notes=["PGD ran on the first 500 images."])
    text = open(path).read()
    assert "## Attacks at L2 <= 2.4" in text
    assert "| attack | adv. accuracy | images/s |" in text
    assert "| generator | 0.0025 | 3512 |" in text
    assert "| PGD-40 \\| first 500 | 0.0000 |  |" in text  # a pipe in a cell is escaped, a missing key left empty
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links == ["attack.png"] and os.path.isfile(tmp_path / "rep" / "attack.png")
    assert "`tfadv-attack --quick`" in text and "idx:/x" in text and "- PGD ran on the first 500" in text
    assert f"tensorflow {tf.__version__}" in text and "keras " in text and "tfadv 0.1.0" in text


def test_epochs_note_explains_a_short_classifier_run(tmp_path):
    zoo_dir = tmp_path / "zoo"
    zoo_dir.mkdir()
    entry = {"kind": "classifier", "dataset": "fashion_mnist", "path": "c", "sha256": "0", "config": {"epochs": 30},
             "metrics": {"accuracy": 0.9397}}
    (zoo_dir / "registry.json").write_text(json.dumps({"cnn": entry}))
    for epochs, accuracy in ((1, 0.577), (30, 0.9391)):
        run = tmp_path / f"run{epochs}"
        run.mkdir()
        (run / "metrics.json").write_text(json.dumps({"accuracy": accuracy, "epochs_run": epochs}))
        note = report.epochs_note(str(run), "cnn", str(zoo_dir))
        assert f"This run: {epochs} epoch(s) -> {accuracy:.2%} test accuracy. Zoo entry cnn: 30 epochs -> 93.97%." \
            in note
        assert ("tuned for 30 epochs: a 1-epoch run is a smoke test" in note) == (epochs == 1)
