"""Text rendering for the synthetic datasets: matplotlib's bundled DejaVu
fonts, glyphs rasterised once per (font, character) with Pillow, words
composed from cached glyphs, then placed in the output image by ONE affine
warp (scale, rotation, shear, translation) with scikit-image.

Rasterising a glyph costs far more than pasting it, so each thread keeps no
state of its own: the cache is shared and filled under a lock (Pillow's
FreeType objects are not documented as thread-safe).
"""
import os
import threading

import numpy as np

from nnlite.data import fonts as font_families

# The DejaVu faces the word generator picks from by default (matplotlib ships
# these in mpl-data/fonts/ttf); Display faces lack most glyphs and are left out.
DEFAULT_FONTS = ("DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique",
                 "DejaVuSans-BoldOblique", "DejaVuSansMono", "DejaVuSansMono-Bold",
                 "DejaVuSerif", "DejaVuSerif-Bold", "DejaVuSerif-Italic")
GLYPH_SIZE = 48  # pixel size glyphs are rasterised at; the warp scales them

_lock = threading.Lock()
_fonts = {}
_glyphs = {}


def font_directory():
    """matplotlib's bundled TrueType folder."""
    return font_families.font_directory()


def resolve_fonts(fonts=None):
    """Font file paths from names (``"DejaVuSans-Bold"``, looked up in
    matplotlib's font folder) or paths; None gives DEFAULT_FONTS."""
    names = DEFAULT_FONTS if fonts is None else fonts
    if isinstance(names, str):
        names = [names]
    if not names:
        raise ValueError("text_render: the font list is empty")
    paths = []
    for name in names:
        path = str(name)
        if path == font_families.PILLOW_DEFAULT:
            paths.append(path)
            continue
        if not os.path.isfile(path):
            path = os.path.join(font_directory(), path if path.endswith(".ttf")
                                else path + ".ttf")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"text_render: font {name!r} is neither a file nor one of "
                                    f"matplotlib's fonts in {font_directory()}")
        paths.append(path)
    return paths


def _font(path):
    font = _fonts.get(path)
    if font is None:
        font = _fonts[path] = font_families.load_font(path, GLYPH_SIZE)
    return font


def line_metrics(path):
    """(ascent, descent) of a face at GLYPH_SIZE: the line box above and below
    the baseline, what a layout engine (and a user's crop of a text line) uses."""
    with _lock:
        return _font(path).getmetrics()


def glyph(path, char):
    """(coverage float32 (h, w) in [0, 1], left, top, advance) of `char` at
    GLYPH_SIZE pixels; left/top place the bitmap relative to the pen position
    on the baseline, advance is the pen's step to the next character."""
    key = (path, char)
    found = _glyphs.get(key)
    if found is not None:
        return found
    with _lock:
        found = _glyphs.get(key)
        if found is None:
            found = _glyphs[key] = _rasterise(_font(path), char)
    return found


def _rasterise(font, char):
    from PIL import Image, ImageDraw
    advance = float(font.getlength(char))
    left, top, right, bottom = font.getbbox(char, anchor="ls")
    if right <= left or bottom <= top:  # a space: no ink, only an advance
        return np.zeros((0, 0), np.float32), 0, 0, advance
    canvas = Image.new("L", (right - left, bottom - top), 0)
    ImageDraw.Draw(canvas).text((-left, -top), char, fill=255, font=font, anchor="ls")
    return np.asarray(canvas, dtype=np.float32) / 255.0, left, top, advance


def word_mask(path, text, spacing=0.0):
    """Coverage image (float32 in [0, 1]) of `text` in one font at GLYPH_SIZE,
    cropped to the ink; `spacing` adds that fraction of GLYPH_SIZE between
    characters (negative tightens). Returns an all-zero 1x1 image for blank text."""
    return word_layout(path, text, spacing)[0]


def word_layout(path, text, spacing=0.0):
    """(mask, top): word_mask's image and the row of its top edge relative to
    the baseline (negative: above it), so callers can place the line box."""
    pieces, pen = [], 0.0
    for char in text:
        bitmap, left, top, advance = glyph(path, char)
        if bitmap.size:
            pieces.append((bitmap, int(round(pen)) + left, top))
        pen += advance + spacing * GLYPH_SIZE
    if not pieces:
        return np.zeros((1, 1), np.float32), 0
    x0 = min(x for _, x, _ in pieces)
    y0 = min(y for _, _, y in pieces)
    x1 = max(x + b.shape[1] for b, x, _ in pieces)
    y1 = max(y + b.shape[0] for b, _, y in pieces)
    mask = np.zeros((y1 - y0, x1 - x0), np.float32)
    for bitmap, x, y in pieces:
        region = mask[y - y0:y - y0 + bitmap.shape[0], x - x0:x - x0 + bitmap.shape[1]]
        np.maximum(region, bitmap, out=region)
    return mask, y0


def place(mask, out_shape, scale_y, scale_x, angle=0.0, shear=0.0, centre=None):
    """Warp `mask` into an `out_shape` image: scaled by (scale_y, scale_x),
    rotated by `angle` degrees and sheared by `shear` (radians) about its
    centre, which lands at `centre` = (row, col) of the output (default the
    middle). Bilinear, zero outside."""
    from skimage.transform import AffineTransform, warp
    h, w = mask.shape
    if centre is None:
        centre = ((out_shape[0] - 1) / 2.0, (out_shape[1] - 1) / 2.0)
    # skimage works in (x, y) = (col, row); compose centre -> scale/shear/rotate -> place.
    to_origin = AffineTransform(translation=(-(w - 1) / 2.0, -(h - 1) / 2.0))
    shape = AffineTransform(scale=(scale_x, scale_y), shear=shear,
                            rotation=np.deg2rad(angle))
    to_centre = AffineTransform(translation=(centre[1], centre[0]))
    forward = to_origin + shape + to_centre
    return warp(mask, forward.inverse, output_shape=out_shape, order=1, mode="constant",
                cval=0.0, preserve_range=True).astype(np.float32)


def rotated_extent(height, width, angle):
    """(height, width) of the axis-aligned box around a height x width box
    rotated by `angle` degrees."""
    c, s = abs(np.cos(np.deg2rad(angle))), abs(np.sin(np.deg2rad(angle)))
    return height * c + width * s, width * c + height * s
