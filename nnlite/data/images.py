"""Image files on disk: decoding with clear errors, resizing, and the text
datasets MJSynth and ImageFolderWithLabels.

Images come back as float32 (C, H, W) in [0, 1]; the model's preprocess does
its own normalisation. Resizing is bilinear with half-pixel centres
(scikit-image order=1), with a Gaussian anti-aliasing filter along an axis
that shrinks: without it a word drawn 150 pixels high and brought to 32
lost thin strokes (STIX's "e" lost its bar and read as "c"), so a user's
large image reached the reader unlike the training renders.
"""
import os

import numpy as np

from nnlite.data.dataset import Dataset
from nnlite.data.text_files import read_lines

RESIZE_MODES = ("stretch", "pad")


# Modes whose pixels are not 8-bit: Pillow's convert("L") would clip them to
# 0..255 instead of scaling, so they are scaled here by their real white level.
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
# Modes with an alpha channel; palette and colour-key transparency show up
# as image.info["transparency"] instead.
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def read_image(path, grey=True):
    """float32 (H, W) (grey) or (H, W, 3) (RGB) in [0, 1] from an image file.

    The array is the picture a viewer shows, whatever the file's form, so a
    user's image and a training image (both come through here) look alike:
    the EXIF orientation is applied; 1-bit, palette, CMYK and 8-bit images go
    through Pillow's conversion; 16-bit grey is scaled by 65535; float pixels
    must already lie in [0, 1]; transparency (an alpha channel, a transparent
    palette entry or colour key) is composited on white, the paper of
    printed text."""
    from PIL import Image, UnidentifiedImageError
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file {path!r} does not exist")
    try:
        with Image.open(path) as image:
            array = _decode(image, grey)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError,
            ValueError) as error:
        raise ValueError(f"cannot decode image file {path!r}: {error}") from None
    if min(array.shape[:2]) < 1:
        raise ValueError(f"image file {path!r} is empty (shape {array.shape})")
    return array


def _decode(image, grey):
    from PIL import ImageOps
    white = _integer_white_level(image)  # before exif_transpose: its copy has no .format
    image = ImageOps.exif_transpose(image)
    if image.mode in SIXTEEN_BIT_MODES + ("I", "F"):
        array = _deep_grey(image, white)
        return array if grey else np.repeat(array[..., None], 3, axis=2)
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        image = _on_white(image)
    image = image.convert("L" if grey else "RGB")
    return np.asarray(image, dtype=np.float32) / 255.0


def _integer_white_level(image):
    """The pixel value of white in a single-channel integer image, or None
    when the file does not say (32-bit integer TIFFs)."""
    if image.mode in SIXTEEN_BIT_MODES:
        return 65535
    if image.mode == "I" and image.format == "PNG":  # Pillow < 10.x opens 16-bit PNGs as "I"
        return 65535
    return None


def _deep_grey(image, white):
    """(H, W) float32 in [0, 1] from a 16-bit, 32-bit integer or float image."""
    raw = np.asarray(image)
    if image.mode == "F":
        if not np.all(np.isfinite(raw)) or raw.size and (raw.min() < 0 or raw.max() > 1):
            raise ValueError(f"float pixels range over [{raw.min()}, {raw.max()}], outside "
                             f"[0, 1]; scale the image to [0, 1] or save it with 8 or 16 "
                             f"bits per channel")
        return raw.astype(np.float32)
    if white is None:
        raise ValueError("32-bit integer pixels have no standard white level; save the "
                         "image with 8 or 16 bits per channel")
    array = raw.astype(np.float32) / white
    colour_key = image.info.get("transparency")
    if isinstance(colour_key, int):  # a PNG tRNS chunk: this grey level is see-through
        array[raw == colour_key] = 1.0
    return array


def _on_white(image):
    """An 8-bit image with transparency composited on white, as RGB."""
    from PIL import Image
    rgba = image.convert("RGBA")
    paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(paper, rgba).convert("RGB")


def resize(image, height, width):
    """Bilinear resize of (H, W[, C]) to (height, width[, C]), smoothed first
    along the axes that shrink (scikit-image's anti-aliasing: a Gaussian of
    sigma (factor - 1) / 2); enlarging is plain bilinear."""
    from skimage.transform import resize as sk_resize
    if image.shape[:2] == (height, width):
        return image.astype(np.float32)
    shrinks = height < image.shape[0] or width < image.shape[1]
    out = sk_resize(image, (height, width) + image.shape[2:], order=1, mode="edge",
                    anti_aliasing=shrinks, preserve_range=True)
    return out.astype(np.float32)


def fit(image, height, width, mode="stretch", fill=1.0):
    """Bring an (H, W[, C]) image to height x width: "stretch" resizes to it;
    "pad" scales to `height` keeping the aspect (narrowing only if wider than
    `width`) and pads on the right with `fill` (white), as the CRNN seed does."""
    if mode == "stretch":
        return resize(image, height, width)
    if mode != "pad":
        raise ValueError(f"fit: mode must be one of {RESIZE_MODES}, got {mode!r}")
    new_width = max(1, min(width, int(round(image.shape[1] * height / image.shape[0]))))
    scaled = resize(image, height, new_width)
    out = np.full((height, width) + image.shape[2:], fill, dtype=np.float32)
    out[:, :new_width] = scaled
    return out


# trim_to_ink: a pixel is ink where it differs from the paper (the median of
# the image's outer frame) by at least INK_SHARE of the largest difference,
# and only when that difference is at least MIN_INK_CONTRAST (else the image
# is left as it is). A row or column counts when it holds at least
# MIN_INK_PIXELS such pixels, so that a speck of noise does not widen the box.
INK_SHARE = 0.5
MIN_INK_CONTRAST = 0.08
MIN_INK_PIXELS = 2


def trim_to_ink(image, margin=0.25):
    """A grey (H, W) image cropped to the box around its text, keeping
    `margin` times the box's height of paper on each side (as much as the
    image has). A word on a large page otherwise shrinks to a few pixels in
    the model's 32-pixel height and loses letters ("Hello" read "Helo" from
    a 400x90 page; "Hello" once trimmed). An image with no clear ink (flat,
    or faint noise) is returned unchanged."""
    if image.ndim != 2:
        raise ValueError(f"trim_to_ink: expected a grey (H, W) image, got shape {image.shape}")
    if min(image.shape) < 3:
        return image
    frame = np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])
    difference = np.abs(image - np.median(frame))
    largest = float(difference.max())
    if not np.isfinite(largest) or largest < MIN_INK_CONTRAST:
        return image
    ink = difference >= INK_SHARE * largest
    rows = np.flatnonzero(ink.sum(axis=1) >= MIN_INK_PIXELS)
    cols = np.flatnonzero(ink.sum(axis=0) >= MIN_INK_PIXELS)
    if rows.size == 0 or cols.size == 0:
        return image
    pad = int(round(margin * (rows[-1] - rows[0] + 1)))
    top, bottom = max(0, rows[0] - pad), min(image.shape[0], rows[-1] + 1 + pad)
    left, right = max(0, cols[0] - pad), min(image.shape[1], cols[-1] + 1 + pad)
    return image[top:bottom, left:right]


def fit_word(image, height, width):
    """A word's grey (H, W) image as the CRNN takes it, the one path for
    training renders, the benchmark, MJSynth and `nnlite predict`: trimmed to
    its text (trim_to_ink), then scaled to `height` keeping the aspect and
    padded white on the right to `width` (fit "pad")."""
    return fit(trim_to_ink(image), height, width, "pad")


def to_chw(image):
    return image[None] if image.ndim == 2 else np.ascontiguousarray(image.transpose(2, 0, 1))


def _check_root(name, root):
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{name}: dataset folder {root!r} does not exist")
    return root


def mjsynth_label(path):
    """The word in an MJSynth file name: ``.../123_Word_456.jpg`` -> ``Word``."""
    stem = os.path.splitext(os.path.basename(path))[0]
    parts = stem.split("_")
    if len(parts) < 3 or not parts[1]:
        raise ValueError(f"MJSynth: file name {os.path.basename(path)!r} is not "
                         f"INDEX_WORD_LEXICONINDEX.jpg")
    return "_".join(parts[1:-1])


class MJSynth(Dataset):
    """MJSynth (Jaderberg et al. 2014) from its folder: `split_file` lists
    ``./2911/6/77_heretical_35885.jpg 35885`` lines; the label is the word in
    the file name. Item: (image float32 (1, height, width) in [0, 1], word).
    mode "stretch" resizes to height x width (CharNet/DictNet); "pad" trims the
    image to its word (trim_to_ink, as `nnlite predict crnn` does), keeps the
    aspect and pads with white on the right (CRNN)."""

    def __init__(self, root, split_file="annotation_train.txt", height=32, width=100,
                 mode="stretch"):
        self.root = _check_root("MJSynth", root)
        if mode not in RESIZE_MODES:
            raise ValueError(f"MJSynth: mode must be one of {RESIZE_MODES}, got {mode!r}")
        self.height, self.width, self.mode = int(height), int(width), mode
        annotation = os.path.join(self.root, split_file)
        if not os.path.isfile(annotation):
            raise FileNotFoundError(f"MJSynth: annotation file {annotation!r} does not exist")
        self.paths, self.words = [], []
        for number, line in enumerate(read_lines(annotation, "MJSynth"), 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
                raise ValueError(f"MJSynth: {annotation}:{number}: expected "
                                 f"'./path/INDEX_WORD_LEXICONINDEX.jpg LEXICONINDEX', "
                                 f"got {line.strip()!r}")
            try:
                word = mjsynth_label(fields[0])
            except ValueError as error:
                raise ValueError(f"{annotation}:{number}: {error}") from None
            self.paths.append(os.path.normpath(os.path.join(self.root, fields[0])))
            self.words.append(word)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        index = self._check_index(index)
        image = read_image(self.paths[index])
        if self.mode == "pad":  # the CRNN's way, as nnlite predict's input
            return fit_word(image, self.height, self.width)[None], self.words[index]
        return fit(image, self.height, self.width, self.mode)[None], self.words[index]


class ImageFolderWithLabels(Dataset):
    """A folder of images and a labels file of ``filename<TAB>label`` lines
    (or ``filename label``: split at the first tab, else the first space, so
    a tab-separated label may contain spaces). Item: (image float32 (C, H, W)
    in [0, 1], label str); C is 1 for grey=True, else 3. With height and width
    the images are brought to that size (see ``fit`` for `mode`)."""

    def __init__(self, root, labels_file="labels.txt", height=None, width=None, grey=True,
                 mode="stretch"):
        self.root = _check_root("ImageFolderWithLabels", root)
        if (height is None) != (width is None):
            raise ValueError("ImageFolderWithLabels: give both height and width, or neither")
        if mode not in RESIZE_MODES:
            raise ValueError(f"ImageFolderWithLabels: mode must be one of {RESIZE_MODES}, "
                             f"got {mode!r}")
        self.height, self.width, self.grey, self.mode = height, width, bool(grey), mode
        labels_path = labels_file if os.path.isabs(labels_file) else \
            os.path.join(self.root, labels_file)
        if not os.path.isfile(labels_path):
            raise FileNotFoundError(f"ImageFolderWithLabels: labels file {labels_path!r} "
                                    f"does not exist")
        self.paths, self.labels = [], []
        for number, line in enumerate(read_lines(labels_path, "ImageFolderWithLabels"), 1):
            if not line.strip():
                continue
            name, sep, label = line.partition("\t") if "\t" in line else line.partition(" ")
            if not sep or not name or not label.strip():
                raise ValueError(f"ImageFolderWithLabels: {labels_path}:{number}: expected "
                                 f"'filename<TAB>label', got {line!r}")
            path = os.path.join(self.root, name)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"ImageFolderWithLabels: {labels_path}:{number} "
                                        f"names {name!r}, but {path!r} does not exist")
            self.paths.append(path)
            self.labels.append(label.strip())

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        index = self._check_index(index)
        image = read_image(self.paths[index], grey=self.grey)
        if self.height is not None:
            image = fit(image, int(self.height), int(self.width), self.mode)
        return to_chw(image), self.labels[index]
