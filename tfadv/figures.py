"""Figures people can read: labelled attack rows, misclassified grids, universal perturbations, confusion.

Every function returns an RGB image, float32 [H, W, 3] in [0, 1], so the same
picture goes to a PNG file (:func:`tfadv.data.images.write_png`) and to TensorBoard
(:func:`log_to_tensorboard`). Text is drawn with Pillow's scalable default font
(``ImageFont.load_default(size=...)``, embedded in Pillow: no font file, no network),
anti-aliased and blended onto the canvas; ``scale`` sets its size (:func:`font_px`).
"""

import functools

import numpy as np

WHITE, BLACK = (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)
RED, GREEN, GREY = (0.85, 0.0, 0.0), (0.0, 0.5, 0.0), (0.45, 0.45, 0.45)
FAILED_FRAME = 3  # px of red frame around an example the attack did not fool
FONT_PX = 9  # font size in px per unit of ``scale`` (capitals about 13 px tall at scale 2) ...
MIN_FONT_PX = 11  # ... and never below this: smaller hinted text runs its letters together


def font_px(scale: int = 1) -> int:
    """The font size in px that text of ``scale`` is drawn with: 11 at scale 1, 18 at scale 2, 27 at scale 3."""
    return max(MIN_FONT_PX, FONT_PX * int(scale))


@functools.lru_cache(maxsize=None)
def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: a scalable TrueType font


def text_size(text: str, scale: int = 1) -> tuple[int, int]:
    """(height, width) in pixels of the box :func:`draw_text` draws ``text`` in: the height is the font's ascent
    plus descent (the same for every text of this ``scale``, so lines align), the width grows with the text."""
    font = _font(font_px(scale))
    ascent, descent = font.getmetrics()
    if not text:
        return ascent + descent, 0
    left, _, right, _ = font.getbbox(text)
    return ascent + descent, int(np.ceil(right - min(0, left)))


def line_height(scale: int = 1) -> int:
    """Vertical distance between two lines of text of ``scale``."""
    return text_size("", scale)[0] + max(1, int(scale))


def text_mask(text: str, scale: int = 1) -> np.ndarray:
    """Coverage of ``text`` as float32 [height, width] in [0, 1] (:func:`text_size`; anti-aliased edges in
    between): 1 where a glyph covers a pixel, 0 around it."""
    from PIL import Image, ImageDraw

    height, width = text_size(text, scale)
    if width == 0:
        return np.zeros((height, 0), np.float32)
    font = _font(font_px(scale))
    image = Image.new("L", (width, height), 0)
    ImageDraw.Draw(image).text((-min(0, font.getbbox(text)[0]), 0), text, fill=255, font=font)
    return np.asarray(image, np.float32) / 255.0


def draw_text(canvas: np.ndarray, text: str, top: int, left: int, color=BLACK, scale: int = 1) -> None:
    """Draws ``text`` onto ``canvas`` [H, W, 3] in place with its box's top-left corner at (``top``, ``left``),
    blending ``color`` by the glyphs' coverage; clipped at the canvas edges."""
    _blend(canvas, text_mask(text, scale), top, left, color)


def draw_text_upright(canvas: np.ndarray, text: str, top: int, left: int, color=BLACK, scale: int = 1) -> None:
    """Draws ``text`` on its side, read bottom to top (an axis or column label), in place: its box, :func:`text_size`
    turned, is width px tall and height px wide with its top-left corner at (``top``, ``left``)."""
    _blend(canvas, np.rot90(text_mask(text, scale)), top, left, color)


def _blend(canvas: np.ndarray, mask: np.ndarray, top: int, left: int, color) -> None:
    """``color`` blended onto ``canvas`` by coverage ``mask`` placed at (top, left), clipped at the edges."""
    top, left = int(top), int(left)
    y0, x0 = max(0, -top), max(0, -left)
    y1 = max(y0, min(mask.shape[0], canvas.shape[0] - top))
    x1 = max(x0, min(mask.shape[1], canvas.shape[1] - left))
    alpha = mask[y0:y1, x0:x1, None]
    region = canvas[top + y0: top + y1, left + x0: left + x1]
    region[...] = region * (1.0 - alpha) + np.asarray(color, np.float32) * alpha


def draw_frame(canvas: np.ndarray, top: int, left: int, height: int, width: int, color=RED,
               thickness: int = FAILED_FRAME) -> None:
    """Draws a rectangle outline of ``thickness`` px in place (outer size height x width)."""
    t = thickness
    canvas[top: top + t, left: left + width] = color
    canvas[top + height - t: top + height, left: left + width] = color
    canvas[top: top + height, left: left + t] = color
    canvas[top: top + height, left + width - t: left + width] = color


def to_rgb(image) -> np.ndarray:
    """[H, W, 1 or 3] in [0, 1] -> float32 [H, W, 3], clipped."""
    image = np.clip(np.asarray(image, np.float32), 0.0, 1.0)
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(f"Expected an image [H, W, 1 or 3]; got shape {image.shape}.")
    return np.repeat(image, 3, -1) if image.shape[-1] == 1 else image


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling by an integer factor (pixels stay visible as squares)."""
    return np.repeat(np.repeat(image, factor, 0), factor, 1)


def amplify(delta) -> np.ndarray:
    """A perturbation scaled per image into [0, 1] around grey 0.5 (grey = 0, white/black = +-largest value)."""
    delta = np.asarray(delta, np.float32)
    axes = tuple(range(1, delta.ndim)) if delta.ndim == 4 else None
    peak = np.max(np.abs(delta), axis=axes, keepdims=delta.ndim == 4)
    return 0.5 + delta / (2 * np.maximum(peak, 1e-8))


def auto_upscale(image_size: int, target: int = 112) -> int:
    """An integer factor bringing ``image_size`` px to about ``target`` px (at least 1)."""
    return max(1, round(target / image_size))


def class_name(names, k: int) -> str:
    """Class ``k``'s name, or its number when the dataset has no names."""
    return names[k] if names and 0 <= k < len(names) else str(k)


def attack_failed(labels, adv_pred, target_class: int | None = None) -> np.ndarray:
    """Per example: did the attack fail? Untargeted: still correct on x_hat; targeted: not sent to target_class."""
    adv_pred = np.asarray(adv_pred)
    if target_class is not None:
        return adv_pred != target_class
    return adv_pred == np.asarray(labels)


def attack_figure(x, x_hat, labels, clean_pred, adv_pred, class_names=(), *, title: str = "",
                  target_class: int | None = None, factor: int | None = None, scale: int = 2,
                  indices=None) -> np.ndarray:
    """One row per example: x | amplified delta | x_hat, upscaled, with the true class and both predictions.

    Rows where the attack failed (see :func:`attack_failed`) get a red frame
    and the word FAILED; ``indices`` (the examples' positions in the split)
    are printed per row. Returns float32 [H, W, 3] in [0, 1].
    """
    x, x_hat = np.asarray(x, np.float32), np.asarray(x_hat, np.float32)
    if x.ndim != 4 or x.shape != x_hat.shape or len(x) == 0:
        raise ValueError(f"attack_figure needs x and x_hat of one shape [N, H, W, C], N > 0; got {x.shape} and "
                         f"{x_hat.shape}.")
    n, h, w, _ = x.shape
    factor = factor or auto_upscale(max(h, w))
    failed = attack_failed(labels, adv_pred, target_class)
    delta = x_hat - x
    l2 = np.sqrt(np.sum(np.square(delta.reshape(n, -1)), 1))
    linf = np.max(np.abs(delta.reshape(n, -1)), 1)
    panels = [x, amplify(delta), x_hat]
    lines = [[f"true: {class_name(class_names, int(labels[i]))}",
              f"on x: {class_name(class_names, int(clean_pred[i]))}",
              f"on x_hat: {class_name(class_names, int(adv_pred[i]))}",
              f"L2 {l2[i]:.2f}  Linf {linf[i]:.2f}"]
             + ([f"example #{int(indices[i])}"] if indices is not None else [])
             + (["FAILED"] if failed[i] else []) for i in range(n)]
    line_h = line_height(scale)
    pad, gap = 4 * scale, 3 * scale
    ph, pw = h * factor, w * factor
    text_w = max(text_size(s, scale)[1] for rows in lines for s in rows)
    row_h = max(ph, line_h * max(len(rows) for rows in lines)) + 2 * pad
    row_w = max(3 * pw + 3 * gap + text_w, text_size(title, scale)[1]) + 2 * pad
    head_h = line_h * (2 if title else 1) + pad
    foot_h = line_h + pad
    canvas = np.ones((head_h + n * row_h + foot_h, row_w, 3), np.float32)
    if title:
        draw_text(canvas, title, pad // 2, pad, scale=scale)
    for col, name in enumerate(("x", "delta", "x_hat", "labels")):
        draw_text(canvas, name, head_h - line_h + scale, pad + col * (pw + gap), GREY, scale)
    for i in range(n):
        top = head_h + i * row_h
        for col, images in enumerate(panels):
            canvas[top + pad: top + pad + ph, pad + col * (pw + gap): pad + col * (pw + gap) + pw] = \
                upscale(to_rgb(images[i]), factor)
        for j, line in enumerate(lines[i]):
            color = RED if line == "FAILED" else GREY if line.startswith("example #") else BLACK
            draw_text(canvas, line, top + pad + j * line_h, pad + 3 * (pw + gap), color, scale)
        if failed[i]:
            draw_frame(canvas, top + 1, 1, row_h - 2, row_w - 2)
    note = "delta: amplified per image, grey = 0.  red frame: attack failed"
    draw_text(canvas, note, canvas.shape[0] - foot_h + pad // 2, pad, GREY, max(1, scale // 2))
    return canvas


def labelled_grid(images, captions, *, cols: int = 4, factor: int | None = None, scale: int = 2,
                  colors=None, title: str = "") -> np.ndarray:
    """Upscaled images in a grid, each with caption lines beneath (``captions[i]``: list of strings)."""
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or len(images) == 0 or len(captions) != len(images):
        raise ValueError(f"labelled_grid needs images [N, H, W, C], N > 0, and one caption list per image; got "
                         f"{images.shape} and {len(captions)} captions.")
    n, h, w, _ = images.shape
    factor = factor or auto_upscale(max(h, w))
    line_h, pad = line_height(scale), 4 * scale
    n_lines = max(len(c) for c in captions)
    tile_w = max([w * factor] + [text_size(s, scale)[1] for c in captions for s in c]) + 2 * pad
    tile_h = h * factor + n_lines * line_h + 2 * pad
    cols = min(cols, n)
    rows = -(-n // cols)
    head_h = line_h + pad if title else 0
    canvas = np.ones((head_h + rows * tile_h, max(cols * tile_w, text_size(title, scale)[1] + 2 * pad), 3),
                     np.float32)
    if title:
        draw_text(canvas, title, pad // 2, pad, scale=scale)
    for i in range(n):
        r, c = divmod(i, cols)
        top, left = head_h + r * tile_h + pad, c * tile_w + pad
        canvas[top: top + h * factor, left: left + w * factor] = upscale(to_rgb(images[i]), factor)
        for j, line in enumerate(captions[i]):
            color = colors[i][j] if colors else BLACK
            draw_text(canvas, line, top + h * factor + scale * 2 + j * line_h, left, color, scale)
    return canvas


def misclassified_figure(images, labels, predictions, class_names=(), *, limit: int = 16, cols: int = 4,
                         title: str = "misclassified") -> np.ndarray | None:
    """The classifier's mistakes among ``images``: each with its true class (black) and prediction (red).

    Returns None when every image is classified correctly.
    """
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    wrong = np.flatnonzero(labels != predictions)[:limit]
    if not len(wrong):
        return None
    captions = [[f"true: {class_name(class_names, int(labels[i]))}",
                 f"pred: {class_name(class_names, int(predictions[i]))}"] for i in wrong]
    return labelled_grid(np.asarray(images)[wrong], captions, cols=cols, colors=[[BLACK, RED]] * len(wrong),
                         title=title)


def perturbation_figure(u, *, factor: int | None = None, scale: int = 2, title: str = "universal perturbation U"):
    """U [H, W, C] (or [1, H, W, C]) amplified around grey, upscaled, with its L2 and L-inf norms."""
    u = np.asarray(u, np.float32)
    u = u[0] if u.ndim == 4 else u
    factor = factor or auto_upscale(max(u.shape[:2]), 224)
    l2, linf = float(np.sqrt(np.sum(np.square(u)))), float(np.max(np.abs(u)))
    captions = [[f"L2 {l2:.3f}  Linf {linf:.3f}", f"amplified x{0.5 / max(linf, 1e-8):.1f}, grey = 0"]]
    return labelled_grid(amplify(u[None]), captions, cols=1, factor=factor, scale=scale, title=title)


def _heat(fraction: float) -> tuple:
    """White (0) to dark blue (1)."""
    low, high = np.array(WHITE), np.array((0.05, 0.18, 0.5))
    return tuple(low + (high - low) * float(np.clip(fraction, 0.0, 1.0)))


def heatmap_figure(shading, texts, row_labels, col_labels, *, title: str, cell: int = 40,
                   scale: int = 2) -> np.ndarray:
    """A labelled heatmap: cell (i, j) shaded by ``shading[i, j]`` in [0, 1] (white to dark blue) and captioned
    ``texts[i][j]``; rows named on the left, columns on top (written upwards when a name is wider than a cell)."""
    shading = np.asarray(shading, np.float64)
    rows, cols = shading.shape
    line_h, pad = line_height(scale), 4 * scale
    label_w = max(text_size(s, scale)[1] for s in row_labels) + 2 * pad
    upright = max(text_size(s, scale)[1] for s in col_labels) > cell - 4
    head_h = (max(text_size(s, scale)[1] for s in col_labels) + pad) if upright else line_h
    top, left = line_h + pad + head_h, pad + label_w
    canvas = np.ones((top + rows * cell + pad, max(left + cols * cell, text_size(title, scale)[1] + pad) + pad, 3),
                     np.float32)
    draw_text(canvas, title, pad // 2, pad, scale=scale)
    for j, name in enumerate(col_labels):
        th, tw = text_size(name, scale)
        if upright:  # drawn on its side, read bottom to top
            draw_text_upright(canvas, name, top - tw - scale * 2, left + j * cell + (cell - th) // 2, GREY, scale)
        else:
            draw_text(canvas, name, top - th - scale * 2, left + j * cell + (cell - tw) // 2, GREY, scale)
    for i in range(rows):
        draw_text(canvas, row_labels[i], top + i * cell + (cell - text_size(row_labels[i], scale)[0]) // 2, pad,
                  scale=scale)
        for j in range(cols):
            y0, x0 = top + i * cell, left + j * cell
            canvas[y0: y0 + cell, x0: x0 + cell] = _heat(shading[i, j])
            s = 1 if text_size(texts[i][j], scale)[1] > cell - 4 else scale
            th, tw = text_size(texts[i][j], s)
            draw_text(canvas, texts[i][j], y0 + (cell - th) // 2, x0 + (cell - tw) // 2,
                      WHITE if shading[i, j] > 0.5 else BLACK, s)
    canvas[top: top + rows * cell, left: left + cols * cell][::cell] = GREY  # grid lines
    canvas[top: top + rows * cell, left: left + cols * cell][:, ::cell] = GREY
    return canvas


def confusion_figure(matrix, class_names=(), *, title: str = "true class (rows) -> prediction (columns)",
                     cell: int = 40, scale: int = 2) -> np.ndarray:
    """The confusion matrix as a heatmap: row-normalised shading, counts in the cells, classes named on the rows."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"confusion_figure needs a square matrix [K, K]; got shape {matrix.shape}.")
    k = matrix.shape[0]
    fractions = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    return heatmap_figure(fractions, [[str(int(v)) for v in row] for row in matrix],
                          [f"{i} {class_name(class_names, i)}" for i in range(k)], [str(j) for j in range(k)],
                          title=title, cell=cell, scale=scale)


def log_to_tensorboard(log_dir: str, figures: dict, step: int = 0) -> None:
    """Writes ``{name: image [H, W, 3]}`` as image summaries into ``log_dir`` (TensorBoard's Images tab)."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        for name, image in figures.items():
            tf.summary.image(name, np.asarray(image, np.float32)[None], step=step)
    writer.flush()
    writer.close()
