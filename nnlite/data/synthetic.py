"""Synthetic, seeded datasets: item i of a dataset with seed s is a pure
function of (s, i) (its random generator is ``default_rng([s, i])``), so
nothing is stored and any order or resume point gives identical items.

* SyntheticWords: rendered words for CRNN / CharNet / DictNet.
* SyntheticLetters: deep_reader's 40x40 images of 1-4 capital letters.
* SyntheticDigitSequences: five (or 1-5) digits on a 128x256 canvas + box.
"""
import os
import string
import threading

import numpy as np

from nnlite.data import text_render
from nnlite.data.dataset import Dataset
from nnlite.data.text_files import read_lines


def _check_size_and_seed(name, size, seed):
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
        raise ValueError(f"{name}: size must be a non-negative int, got {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{name}: seed must be a non-negative int, got {seed!r}")


class _Seeded(Dataset):
    def __len__(self):
        return self.size

    def rng(self, index):
        return np.random.default_rng([self.seed, self._check_index(index)])


def load_lexicon(lexicon):
    """A list of words from a list or from a file with one word per line."""
    if isinstance(lexicon, (str, os.PathLike)):
        if not os.path.isfile(lexicon):
            raise FileNotFoundError(f"lexicon file {os.fspath(lexicon)!r} does not exist")
        return [line.strip() for line in read_lines(lexicon, "lexicon") if line.strip()]
    return [str(word) for word in lexicon]


class SyntheticWords(_Seeded):
    """Item: (image float32 (1, height, width) in [0, 1], text str).

    Text: a random string of min_length..max_length characters of `alphabet`
    (whitespace in the alphabet, e.g. CharNet's padding space, is never drawn),
    or a word of `lexicon` (list or file). Rendering: one of `fonts` (default:
    9 DejaVu faces), random size, letter spacing, aspect, rotation (+-4
    degrees), shear, position, blur, Gaussian noise, colours, gamma. Words too
    wide for the image are squeezed horizontally, as resizing MJSynth crops
    does. augment=False draws black text in DejaVuSans on white, centred.

    layout="centred" (default) keeps each word's aspect (squeezed only when too
    wide) at a random position, with empty space beside short words;
    layout="crop" stretches or squeezes every word horizontally to fill 85-97%
    of the width (94% clean), as resizing a tight word crop such as MJSynth's
    to a fixed width does, so character i of an n-character word always sits
    near (i + 0.5) / n of the width."""

    LAYOUTS = ("centred", "crop")

    def __init__(self, size, alphabet, height=32, width=100, min_length=1, max_length=16,
                 seed=0, lexicon=None, augment=True, fonts=None, layout="centred"):
        _check_size_and_seed("SyntheticWords", size, seed)
        if not 1 <= min_length <= max_length:
            raise ValueError(f"SyntheticWords: need 1 <= min_length <= max_length, got "
                             f"{min_length}, {max_length}")
        if height < 8 or width < 8:
            raise ValueError(f"SyntheticWords: image size {height}x{width} is too small")
        self.size, self.seed = int(size), int(seed)
        self.alphabet = str(alphabet)
        self.characters = [c for c in self.alphabet if not c.isspace()]
        if not self.characters:
            raise ValueError(f"SyntheticWords: alphabet {alphabet!r} has no drawable character")
        self.height, self.width = int(height), int(width)
        self.min_length, self.max_length = int(min_length), int(max_length)
        self.augment = bool(augment)
        if layout not in self.LAYOUTS:
            raise ValueError(f"SyntheticWords: layout must be one of {self.LAYOUTS}, got "
                             f"{layout!r}")
        self.layout = layout
        self.fonts = text_render.resolve_fonts(fonts)
        self.lexicon = None
        if lexicon is not None:
            self.lexicon = load_lexicon(lexicon)
            if not self.lexicon:
                raise ValueError("SyntheticWords: the lexicon is empty")
            for word in self.lexicon:
                bad = [c for c in word if c not in self.alphabet or c.isspace()]
                if bad or not min_length <= len(word) <= max_length:
                    raise ValueError(
                        f"SyntheticWords: lexicon word {word!r} "
                        + (f"has characters {bad} outside the alphabet {self.alphabet!r}" if bad
                           else f"is not {min_length}..{max_length} characters long"))

    def text(self, rng):
        if self.lexicon is not None:
            return self.lexicon[rng.integers(len(self.lexicon))]
        length = rng.integers(self.min_length, self.max_length + 1)
        return "".join(self.characters[i] for i in rng.integers(len(self.characters),
                                                                size=length))

    def __getitem__(self, index):
        rng = self.rng(index)
        text = self.text(rng)
        return self.render(text, rng), text

    def render(self, text, rng):
        H, W = self.height, self.width
        aug = self.augment
        font = self.fonts[rng.integers(len(self.fonts))] if aug else self.fonts[0]
        mask = text_render.word_mask(font, text, rng.uniform(-0.04, 0.2) if aug else 0.05)
        # Font size as a fraction of the image height, then fit the ink inside.
        scale = H * (rng.uniform(0.5, 0.85) if aug else 0.7) / text_render.GLYPH_SIZE
        scale_y, scale_x = scale, scale * (rng.uniform(0.85, 1.2) if aug else 1.0)
        angle = rng.uniform(-4.0, 4.0) if aug else 0.0
        shear = rng.uniform(-0.2, 0.2) if aug else 0.0
        # "crop": the ink's width is set (the only extra draw, so "centred"
        # items stay what they were); "centred": it is capped
        fill = (rng.uniform(0.85, 0.97) if aug else 0.94) if self.layout == "crop" else None
        for _ in range(8 if fill is not None else 6):
            sheared_w = mask.shape[1] * scale_x + mask.shape[0] * scale_y * abs(np.tan(shear))
            ink_h, ink_w = text_render.rotated_extent(mask.shape[0] * scale_y, sheared_w, angle)
            if ink_h > 0.92 * H:
                shrink = 0.92 * H / ink_h
                scale_y, scale_x = scale_y * shrink, scale_x * shrink
            elif fill is not None and abs(ink_w - fill * W) > 0.25:
                scale_x *= fill * W / ink_w
            elif fill is None and ink_w > 0.94 * W:
                scale_x *= 0.94 * W / ink_w
            else:
                break
        free_y, free_x = max(H - ink_h, 0) / 2, max(W - ink_w, 0) / 2
        centre = ((H - 1) / 2 + (rng.uniform(-free_y, free_y) * 0.8 if aug else 0),
                  (W - 1) / 2 + (rng.uniform(-free_x, free_x) if aug else 0))
        ink = text_render.place(mask, (H, W), scale_y, scale_x, angle, shear, centre)
        if not aug:
            return (1.0 - ink)[None].astype(np.float32)
        from skimage.exposure import adjust_gamma
        from skimage.filters import gaussian
        blur = rng.uniform(0.0, 1.0)
        if blur > 0.3:
            ink = gaussian(ink, sigma=blur, preserve_range=True)
        background, foreground = rng.uniform(0.55, 1.0), rng.uniform(0.0, 0.45)
        if rng.random() < 0.2:  # light text on a dark background
            background, foreground = 1.0 - background, 1.0 - foreground
        gradient = np.linspace(-1, 1, W)[None, :] * rng.uniform(-0.1, 0.1)
        image = background + gradient + (foreground - background) * ink
        image = image + rng.normal(0.0, rng.uniform(0.0, 0.06), size=image.shape)
        image = adjust_gamma(np.clip(image, 0.0, 1.0), rng.uniform(0.7, 1.4))
        return image[None].astype(np.float32)


class SyntheticLetters(_Seeded):
    """deep_reader's data (SPECS section 2). Item: (image float32 (1, 40, 40),
    text of 1-4 letters A-Z). Black image, letters in grey 128/255 in
    DejaVuSans at `font_size` pixels, the word placed uniformly at random with a
    1-pixel margin, plus Gaussian noise of sigma `noise`, NOT clipped."""

    LETTERS = string.ascii_uppercase
    _font_lock = threading.Lock()

    def __init__(self, size, seed=0, image_size=40, font_size=9, max_letters=4, noise=0.1,
                 grey=128, font="DejaVuSans"):
        _check_size_and_seed("SyntheticLetters", size, seed)
        self.size, self.seed = int(size), int(seed)
        self.image_size, self.max_letters = int(image_size), int(max_letters)
        self.noise, self.grey = float(noise), float(grey)
        from PIL import ImageFont
        self.font = ImageFont.truetype(text_render.resolve_fonts([font])[0], int(font_size))
        widest = self.font.getbbox("W" * self.max_letters)
        if widest[2] - widest[0] > self.image_size - 2:
            raise ValueError(f"SyntheticLetters: {self.max_letters} letters at font size "
                             f"{font_size} do not fit a {image_size}-pixel image")

    def __getitem__(self, index):
        from PIL import Image, ImageDraw
        rng = self.rng(index)
        length = rng.integers(1, self.max_letters + 1)
        text = "".join(self.LETTERS[i] for i in rng.integers(26, size=length))
        n = self.image_size
        with self._font_lock:
            left, top, right, bottom = self.font.getbbox(text)
            x = rng.integers(1, n - 1 - (right - left) + 1)
            y = rng.integers(1, n - 1 - (bottom - top) + 1)
            canvas = Image.new("L", (n, n), 0)
            ImageDraw.Draw(canvas).text((x - left, y - top), text, fill=int(self.grey),
                                        font=self.font)
        image = np.asarray(canvas, dtype=np.float32) / 255.0
        image = image + rng.normal(0.0, self.noise, size=image.shape).astype(np.float32)
        return image[None], text


class SyntheticDigitSequences(_Seeded):
    """SPECS section 5. Item: (image float32 (1, 128, 256) in [0, 1],
    labels int64 (5,), box float32 (4,) = [x_center, y_center, h, w] in pixels).

    Each digit is a 28x28 white-on-black cell, MNIST-like: a DejaVu glyph fitted
    to about 20 pixels, with a random affine (rotation, shear, scale, shift) and
    an elastic distortion (Simard et al. 2003) done in one resampling. The
    cells sit side by side in a strip (28 x 28n) pasted at a random place on a
    black canvas; the box is the strip's (edges at x0 and x0 + 28n, so
    x_center = x0 + 14n). variable_length=True draws 1-5 digits and pads the
    labels with class 10. `mnist` (an object with uint8 `images` (N, 28, 28)
    and `labels`, e.g. nnlite.data.MNIST) takes the digits from MNIST instead."""

    CANVAS = (128, 256)
    CELL = 28
    NUM_DIGITS = 5
    NO_DIGIT = 10

    def __init__(self, size, seed=0, variable_length=False, fonts=None, elastic=True,
                 mnist=None):
        _check_size_and_seed("SyntheticDigitSequences", size, seed)
        self.size, self.seed = int(size), int(seed)
        self.variable_length = bool(variable_length)
        self.fonts = text_render.resolve_fonts(fonts)
        self.elastic = bool(elastic)
        self.mnist = mnist

    def digit_cell(self, digit, rng):
        from skimage.filters import gaussian
        from skimage.transform import warp
        n = self.CELL
        mask = text_render.word_mask(self.fonts[rng.integers(len(self.fonts))], str(digit))
        scale = 20.0 * rng.uniform(0.8, 1.05) / max(mask.shape)
        angle, shear = np.deg2rad(rng.uniform(-12, 12)), rng.uniform(-0.25, 0.25)
        aspect = rng.uniform(0.85, 1.15)
        # Forward map glyph (x, y) about its centre -> cell; we need its inverse.
        c, s = np.cos(angle), np.sin(angle)
        forward = np.array([[c, -s], [s, c]]) @ np.array([[1, np.tan(shear)], [0, 1]]) \
            @ np.diag([scale * aspect, scale])
        inverse = np.linalg.inv(forward)
        rows, cols = np.mgrid[0:n, 0:n].astype(np.float64)
        if self.elastic:  # smooth random displacement field, a few pixels at most
            alpha = rng.uniform(8.0, 24.0)
            rows = rows + alpha * gaussian(rng.uniform(-1, 1, (n, n)), sigma=4.0)
            cols = cols + alpha * gaussian(rng.uniform(-1, 1, (n, n)), sigma=4.0)
        centre = (n - 1) / 2.0 + rng.uniform(-1.5, 1.5, size=2)
        dx, dy = cols - centre[1], rows - centre[0]
        src_x = inverse[0, 0] * dx + inverse[0, 1] * dy + (mask.shape[1] - 1) / 2.0
        src_y = inverse[1, 0] * dx + inverse[1, 1] * dy + (mask.shape[0] - 1) / 2.0
        cell = warp(mask, np.array([src_y, src_x]), order=1, mode="constant", cval=0.0,
                    preserve_range=True)
        peak = cell.max()
        return cell / peak if peak > 0 else cell

    def __getitem__(self, index):
        rng = self.rng(index)
        count = rng.integers(1, self.NUM_DIGITS + 1) if self.variable_length else self.NUM_DIGITS
        n = self.CELL
        if self.mnist is not None:
            picks = rng.integers(len(self.mnist.labels), size=count)
            digits = [int(self.mnist.labels[i]) for i in picks]
            cells = [self.mnist.images[i].astype(np.float32) / 255.0 for i in picks]
        else:
            digits = [int(d) for d in rng.integers(10, size=count)]
            cells = [self.digit_cell(d, rng) for d in digits]
        strip = np.concatenate(cells, axis=1)
        height, width = self.CANVAS
        y0 = rng.integers(0, height - n + 1)
        x0 = rng.integers(0, width - n * count + 1)
        image = np.zeros((1, height, width), np.float32)
        image[0, y0:y0 + n, x0:x0 + n * count] = strip
        labels = np.full(self.NUM_DIGITS, self.NO_DIGIT, dtype=np.int64)
        labels[:count] = digits
        box = np.array([x0 + n * count / 2.0, y0 + n / 2.0, n, n * count], dtype=np.float32)
        return image, labels, box
