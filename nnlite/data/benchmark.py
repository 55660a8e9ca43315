"""The "unseen fonts" benchmark: words in font families that training never
uses (nnlite.data.fonts.HELD_OUT_FAMILIES), from words training never uses
(nnlite.data.words.held_out_words), drawn the way a user makes a test
image, NOT by the training renderer:

    Pillow's ImageDraw.text writes the word in colour on a plain page at a
    random place and size; the page is cropped around the ink with a small
    random margin; the crop becomes grey by Pillow's convert("L"), as
    nnlite.data.read_image turns a user's colour file into grey; then
    nnlite.data.images.fit_word fits it to 32x128 as for any image.

Nothing is stored: item i is a pure function of (seed, i), so the default
benchmark (BENCHMARK_SIZE words, BENCHMARK_SEED) is the same everywhere;
`nnlite eval crnn CHECKPOINT --data unseen-fonts` reads it. Whole-kerned
Pillow text, per-pixel ink bounding boxes and colour pages are what the
training renderer (cached glyphs, one projective warp, grey levels) does
not have.
"""
import numpy as np

from nnlite.data import fonts, words as word_lists
from nnlite.data.dataset import Dataset
from nnlite.data.images import fit_word

BENCHMARK_SIZE = 1000
BENCHMARK_SEED = 20151   # fixed: changing it changes every published figure
DIGITS_FRACTION = 0.25   # the rest: held-out words, a third in each case
WORD_LENGTHS = (2, 12)
DIGIT_LENGTHS = (2, 8)
FONT_SIZES = (14, 64)    # Pillow font sizes in pixels


def _luma(rgb):
    """ITU-R 601-2 luma in [0, 1], the formula of Pillow's convert("L")."""
    return (299 * rgb[0] + 587 * rgb[1] + 114 * rgb[2]) / 1000.0 / 255.0


def _colours(rng):
    """(ink, paper) RGB tuples: mostly dark ink on light paper, one in four a
    colour pair (either way round) whose grey contrast is at least 0.3."""
    if rng.random() < 0.75:
        paper = tuple(int(v) for v in rng.integers(215, 256, size=3))
        ink = tuple(int(v) for v in rng.integers(0, 70, size=3))
        return ink, paper
    for _ in range(100):
        ink = tuple(int(v) for v in rng.integers(0, 256, size=3))
        paper = tuple(int(v) for v in rng.integers(0, 256, size=3))
        if abs(_luma(ink) - _luma(paper)) >= 0.3:
            return ink, paper
    return (0, 0, 0), (255, 255, 255)


def draw_word(text, face, font_size, ink, paper, rng):
    """`text` drawn by ImageDraw.text on a page, cropped around the ink with a
    margin of 0 to a quarter of the font size: a grey float32 (H, W) image."""
    from PIL import Image, ImageDraw
    font = fonts.load_font(face, font_size)
    left, top, right, bottom = font.getbbox(text)
    width, height = right - left, bottom - top
    page_w, page_h = width + 4 * font_size, height + 4 * font_size
    page = Image.new("RGB", (page_w, page_h), paper)
    x = int(rng.integers(font_size, 3 * font_size + 1)) - left
    y = int(rng.integers(font_size, 3 * font_size + 1)) - top
    ImageDraw.Draw(page).text((x, y), text, font=font, fill=ink)
    pixels = np.asarray(page, np.int16)
    ink_rows, ink_cols = np.nonzero(np.any(pixels != np.array(paper, np.int16), axis=2))
    margins = rng.integers(0, font_size // 4 + 1, size=4)
    box = (max(int(ink_cols.min()) - int(margins[0]), 0),
           max(int(ink_rows.min()) - int(margins[1]), 0),
           min(int(ink_cols.max()) + 1 + int(margins[2]), page_w),
           min(int(ink_rows.max()) + 1 + int(margins[3]), page_h))
    grey = page.crop(box).convert("L")
    return np.asarray(grey, np.float32) / 255.0


class UnseenFontsBenchmark(Dataset):
    """Item: (image float32 (1, height, width) in [0, 1], text). `size` words
    (default BENCHMARK_SIZE) from `seed` (default BENCHMARK_SEED) in the
    faces of `families` (default the held-out ones, each family equally
    often): held-out English words of 2-12 letters in lower, Title or UPPER
    case, or digit strings of 2-8 digits."""

    def __init__(self, size=BENCHMARK_SIZE, seed=BENCHMARK_SEED,
                 families=fonts.HELD_OUT_FAMILIES, height=32, width=128):
        for name, value in (("size", size), ("seed", seed)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"UnseenFontsBenchmark: {name} must be a non-negative int, "
                                 f"got {value!r}")
        self.size, self.seed = int(size), int(seed)
        self.families = fonts.check_families(families)
        self.words = tuple(w for w in word_lists.held_out_words()
                           if WORD_LENGTHS[0] <= len(w) <= WORD_LENGTHS[1])
        self.height, self.width = int(height), int(width)

    def __len__(self):
        return self.size

    def text(self, rng):
        if rng.random() < DIGITS_FRACTION:
            length = int(rng.integers(DIGIT_LENGTHS[0], DIGIT_LENGTHS[1] + 1))
            return "".join(str(d) for d in rng.integers(0, 10, size=length))
        word = self.words[rng.integers(len(self.words))]
        return word_lists.apply_case(word, ("lower", "title", "upper")[rng.integers(3)])

    def natural(self, index):
        """(the cropped grey image before fitting, text, face) of item `index`."""
        rng = np.random.default_rng([self.seed, self._check_index(index)])
        text = self.text(rng)
        family = self.families[rng.integers(len(self.families))]
        face = fonts.faces([family])[rng.integers(len(fonts.FAMILIES[family]))]
        size = int(rng.integers(FONT_SIZES[0], FONT_SIZES[1] + 1))
        ink, paper = _colours(rng)
        return draw_word(text, face, size, ink, paper, rng), text, face

    def __getitem__(self, index):
        image, text, _ = self.natural(index)
        return fit_word(image, self.height, self.width)[None].astype(np.float32), text
