"""Pictures of a run: training curves and attention masks. Drawn with
matplotlib's object API on an Agg canvas (no pyplot, no global backend
change), written through a temporary file and os.replace."""
import os

import numpy as np

from nnlite.io.atomic import atomic_path


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save_atomic(path, write):
    with atomic_path(path, suffix=os.path.splitext(path)[1]) as temporary:
        write(temporary)


def plot_curves(path, history, metric_name):
    """`path` (PNG): the figure of curves_figure(history, metric_name)."""
    figure = curves_figure(history, metric_name)
    _save_atomic(path, lambda target: figure.savefig(target, format="png"))
    return path


def curves_figure(history, metric_name):
    """Two panels: the training (and validation) loss against step, on a log
    scale where every loss is positive (the first steps' losses dwarf the
    rest otherwise); and every validation metric but the loss against step,
    `metric_name` first (e.g. word accuracy beside the character error rate)."""
    train, evals = history.get("train", []), history.get("eval", [])
    figure = _figure(10, 4)
    loss_axes = figure.add_subplot(1, 2, 1)
    losses = [row["loss"] for row in train]
    loss_axes.plot([row["step"] for row in train], losses, label="train loss")
    if evals and all("loss" in row for row in evals):
        losses += [row["loss"] for row in evals]
        loss_axes.plot([row["step"] for row in evals], [row["loss"] for row in evals], "o-",
                       label="validation loss")
    finite = [value for value in losses if np.isfinite(value)]
    if finite and min(finite) > 0:
        loss_axes.set_yscale("log")
    loss_axes.set_xlabel("step")
    loss_axes.set_ylabel("loss")
    loss_axes.legend()
    loss_axes.grid(alpha=0.3, which="both")
    metric_axes = figure.add_subplot(1, 2, 2)
    names = [metric_name] + sorted({key for row in evals for key in row}
                                   - {"step", "loss", metric_name})
    drawn = False
    for name in names:
        points = [(row["step"], row[name]) for row in evals if name in row]
        if points:
            steps, values = zip(*points)
            metric_axes.plot(steps, values, "o-", label=name)
            drawn = True
    if drawn:
        metric_axes.legend()
    else:
        metric_axes.text(0.5, 0.5, "no evaluation yet", ha="center", va="center",
                         transform=metric_axes.transAxes)
    metric_axes.set_xlabel("step")
    metric_axes.set_ylabel("validation")
    metric_axes.grid(alpha=0.3)
    figure.tight_layout()
    return figure


# --------------------------------------------------------------- attention --

def image_for_display(image):
    """(H, W), (1, H, W), (3, H, W) or (H, W, 3) -> a 2-D or (H, W, 3) array in [0, 1]."""
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 3 and array.shape[0] in (1, 3):
        array = array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3):
        raise ValueError(f"visualize: an image must be (H, W), (C, H, W) or (H, W, C), got "
                         f"shape {np.shape(image)}")
    low, high = float(array.min()), float(array.max())
    return (array - low) / (high - low) if high > low else np.zeros_like(array)


def _resize_mask(mask, shape):
    """Nearest-neighbour resize of a 2-D mask to `shape` (H, W)."""
    rows = (np.arange(shape[0]) * mask.shape[0] // shape[0])
    cols = (np.arange(shape[1]) * mask.shape[1] // shape[1])
    return mask[rows][:, cols]


def check_masks(masks, count):
    masks = np.asarray(masks, dtype=np.float64)
    if masks.ndim != 4 or masks.shape[0] != count:
        raise ValueError(f"visualize: attention_masks must return an array (N={count}, steps, "
                         f"h, w), got shape {masks.shape}")
    return masks


def attention_pictures(image, masks, png_path, gif_path, titles=None):
    """One image's masks (steps, h, w): a PNG grid (the mask over the image for
    each step) and an animated GIF stepping through them."""
    from PIL import Image
    picture = image_for_display(image)
    steps = masks.shape[0]
    shape = picture.shape[:2]
    figure = _figure(2.2 * steps, 2.4)
    frames = []
    for step in range(steps):
        mask = _resize_mask(masks[step], shape)
        peak = mask.max()
        mask = mask / peak if peak > 0 else mask
        axes = figure.add_subplot(1, steps, step + 1)
        axes.imshow(picture, cmap="gray", vmin=0, vmax=1)
        axes.imshow(mask, cmap="jet", alpha=0.5, vmin=0, vmax=1)
        axes.set_title(titles[step] if titles else f"step {step + 1}", fontsize=9)
        axes.axis("off")
        grey = picture if picture.ndim == 2 else picture.mean(axis=-1)
        overlay = np.stack([0.5 * grey + 0.5 * mask, 0.5 * grey, 0.5 * grey * (1 - mask)], -1)
        frames.append(Image.fromarray((overlay * 255).astype(np.uint8)).resize(
            (shape[1] * 4, shape[0] * 4), Image.NEAREST))
    figure.tight_layout()
    _save_atomic(png_path, lambda target: figure.savefig(target, format="png"))
    _save_atomic(gif_path, lambda target: frames[0].save(
        target, format="GIF", save_all=True, append_images=frames[1:], duration=600, loop=0))
    return png_path, gif_path


# ------------------------------------------------------------------- boxes --

def box_picture(image, box, text, png_path):
    """`png_path` (PNG): the figure of box_figure(image, box, text)."""
    figure = box_figure(image, box, text)
    _save_atomic(png_path, lambda target: figure.savefig(target, format="png"))
    return png_path


def box_figure(image, box, text):
    """The image with a box [x_center, y_center, h, w] (pixels; a pixel i spans
    [i, i + 1)) drawn on it and `text` as the title: what a localising model found."""
    from matplotlib.patches import Rectangle
    picture = image_for_display(image)
    x_center, y_center, height, width = (float(v) for v in box)
    rows, cols = picture.shape[:2]
    figure = _figure(6.0 * cols / max(rows, cols), 6.0 * rows / max(rows, cols) + 0.5)
    axes = figure.add_subplot(1, 1, 1)
    axes.imshow(picture, cmap="gray", vmin=0, vmax=1)
    # imshow centres pixel i at i, so the box's edge at x sits at x - 0.5
    axes.add_patch(Rectangle((x_center - width / 2 - 0.5, y_center - height / 2 - 0.5),
                             width, height, fill=False, edgecolor="red", linewidth=2))
    axes.set_title(f"read: {text or '(nothing)'}", fontsize=11)
    axes.axis("off")
    figure.tight_layout()
    return figure
