"""Printed-text training data: real words (nnlite.data.words) in the training
font families (nnlite.data.fonts), rendered at their natural size and
aspect with geometric and photometric variety, then fitted to the model's
input by nnlite.data.images.fit_word (trimmed to the text, then fit "pad"),
the function `nnlite predict crnn` applies to a user's image, so both reach
the model the same way.

    data = PrintedWords(1_000_000, seed=0, curriculum=Curriculum(1000, 4000),
                        items_per_step=32)
    image, text = data[i]          # float32 (1, 32, 128) in [0, 1], str

Item i is a pure function of (seed, i). The augmentation strength (0: black
ink on white, upright, sharp; 1: everything below at full range) is either
fixed (`strength`) or follows a Curriculum of the training step, which an
item knows as i // items_per_step: the CRNN recipe reads this dataset in
order (shuffling a synthetic stream adds nothing), so item i is trained on
at exactly that step, on a resume too.

Why a curriculum: CTC first learns to emit only blanks; on hard renders a
small CRNN stays on that plateau for thousands of steps (docs/results/text.md),
while clean renders get it reading within ~1,000 steps.

The renderer composes cached glyph bitmaps (nnlite.data.text_render), then
ONE projective warp does scale, aspect, rotation, shear and perspective;
the background, ink, blur, noise and JPEG steps work on the natural-size
image. The benchmark (nnlite.data.benchmark) renders in another way on
purpose.
"""
import io

import numpy as np

from nnlite.data import fonts, text_render, words as word_lists
from nnlite.data.dataset import Dataset
from nnlite.data.images import fit_word

BACKGROUNDS = ("flat", "gradient", "noise", "paper")


class Curriculum:
    """Augmentation strength as a function of the training step: 0 (clean)
    for the first `clean_steps`, then rising linearly to `final` over
    `ramp_steps`, then staying there."""

    def __init__(self, clean_steps=1000, ramp_steps=4000, final=1.0):
        if clean_steps < 0 or ramp_steps < 0:
            raise ValueError(f"Curriculum: clean_steps and ramp_steps must be >= 0, got "
                             f"{clean_steps}, {ramp_steps}")
        if not 0.0 <= final <= 1.0:
            raise ValueError(f"Curriculum: final strength must be in [0, 1], got {final}")
        self.clean_steps, self.ramp_steps = int(clean_steps), int(ramp_steps)
        self.final = float(final)

    def __call__(self, step):
        past = step - self.clean_steps
        if past < 0:
            return 0.0
        if past >= self.ramp_steps:
            return self.final
        return self.final * past / self.ramp_steps

    def __repr__(self):
        return (f"Curriculum(clean_steps={self.clean_steps}, ramp_steps={self.ramp_steps}, "
                f"final={self.final})")


def _homography(src, dst):
    """The 3x3 projective map taking the 4 (x, y) points `src` to `dst`."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    h = np.linalg.solve(np.array(rows, np.float64), np.array(rhs, np.float64))
    return np.append(h, 1.0).reshape(3, 3)


def _smooth_noise(rng, shape, cells):
    """Low-frequency noise in about [-1, 1]: a coarse random grid (one value
    per `cells` pixels) upsampled bilinearly. Cheaper than filtering."""
    from nnlite.data.images import resize
    coarse = rng.uniform(-1.0, 1.0, size=(max(2, shape[0] // cells + 2),
                                           max(2, shape[1] // cells + 2)))
    return resize(coarse.astype(np.float32), shape[0], shape[1])


def _background(rng, shape, paper, strength):
    kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))] if strength > 0 else "flat"
    background = np.full(shape, paper, np.float32)
    if kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
        ramp = np.cos(angle) * cols / shape[1] + np.sin(angle) * rows / shape[0]
        background += rng.uniform(-0.35, 0.35) * strength * (ramp - ramp.mean())
    elif kind == "noise":
        background += rng.normal(0.0, 0.08 * strength, size=shape).astype(np.float32)
    elif kind == "paper":  # blotches a few pixels to a word wide, plus fine grain
        background += rng.uniform(0.0, 0.15) * strength * _smooth_noise(
            rng, shape, int(rng.integers(4, 24)))
        background += rng.normal(0.0, 0.03 * strength, size=shape).astype(np.float32)
    return background, kind


def _jpeg(image, quality):
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(np.round(image * 255).astype(np.uint8), "L").save(
        buffer, "JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("L"), np.float32) / 255.0


def render_natural(text, face, rng, strength=1.0):
    """`text` in font `face` (a path from nnlite.data.fonts.faces) as a grey
    float32 (H, W) image at its natural size and aspect, values on the
    8-bit grid (k / 255), as a user's saved image would be. `strength` in
    [0, 1] scales every augmentation range (0: black on white, upright)."""
    from skimage.transform import warp
    s = float(np.clip(strength, 0.0, 1.0))
    mask, top = text_render.word_layout(face, text, rng.uniform(-0.04, 0.15) * s)
    weight = rng.random()
    if weight < 0.25 * s:  # stroke weight beyond the faces' own: bolder or lighter
        from skimage.morphology import dilation, erosion
        footprint = np.ones((3, 3), bool)
        if weight < 0.15 * s:
            mask = dilation(mask, footprint)
        else:  # half an erosion: a hairline fades but never vanishes from the label
            mask = 0.5 * (mask + erosion(mask, footprint))
    ascent, descent = text_render.line_metrics(face)
    # STIX's line box is a math font's (1.5 em): cap it near a text face's
    ascent = min(ascent, 0.95 * text_render.GLYPH_SIZE)
    descent = min(descent, 0.3 * text_render.GLYPH_SIZE)
    baseline = -top  # the baseline's row in mask coordinates
    h, w = mask.shape
    # The crop box around the word, in mask pixels: around the ink, or around
    # the font's line box (ascender to descender), as different users crop.
    if rng.random() < 0.5 * s:
        y0, y1 = baseline - ascent, baseline + descent
    else:
        y0, y1 = 0.0, float(h)
    box_h = y1 - y0
    low = -0.06 if rng.random() < 0.2 * s else 0.02  # sometimes cut into the ink a little
    m_top, m_bottom = rng.uniform(low, 0.1 + 0.4 * s, size=2) * box_h
    m_left, m_right = rng.uniform(0.02, 0.1 + 0.6 * s, size=2) * box_h
    corners = np.array([[-m_left, y0 - m_top], [w + m_right, y0 - m_top],
                        [w + m_right, y1 + m_bottom], [-m_left, y1 + m_bottom]])
    # Text height in output pixels: clean renders near the model's 32,
    # augmented ones from small (upsampled, soft) to large (downsampled).
    low_px, high_px = 28 - 14 * s, 40 + 24 * s
    scale = np.exp(rng.uniform(np.log(low_px), np.log(high_px))) / box_h
    sx, sy = scale * rng.uniform(1 - 0.15 * s, 1 + 0.15 * s), scale
    shear, angle = rng.uniform(-0.25, 0.25) * s, np.deg2rad(rng.uniform(-4, 4) * s)
    centre = corners.mean(axis=0)
    c, si = np.cos(angle), np.sin(angle)
    linear = np.array([[c, -si], [si, c]]) @ np.array([[1.0, -shear], [0.0, 1.0]]) \
        @ np.diag([sx, sy])
    placed = (corners - centre) @ linear.T
    placed += rng.uniform(-0.08, 0.08, size=placed.shape) * s * box_h * scale  # perspective
    placed -= placed.min(axis=0)
    out_w, out_h = (int(np.ceil(v)) + 1 for v in placed.max(axis=0))
    forward = _homography(corners, placed)
    coverage = warp(mask, np.linalg.inv(forward), output_shape=(max(out_h, 8), max(out_w, 8)),
                    order=1, mode="constant", cval=0.0, preserve_range=True).astype(np.float32)

    # Ink and paper as grey levels (a colour image reaches the reader as its
    # luma, so grey levels cover every colour pair of the same contrast):
    # contrast from strong down to faint as the strength grows, and light
    # text on dark paper one time in five at full strength.
    # Faint renders are drawn less often than strong ones (u ** 1.5).
    contrast = 1.0 - 0.88 * s * rng.uniform() ** 1.5
    paper = rng.uniform(contrast, 1.0)
    ink = paper - contrast
    if rng.random() < 0.2 * s:
        paper, ink = 1.0 - paper, 1.0 - ink
    shape = coverage.shape
    # texture no stronger than a few times the contrast, so a faint word stays legible
    background, _ = _background(rng, shape, paper, s * min(1.0, 3 * contrast))
    if s > 0:  # uneven ink: a worn ribbon, a dry pen
        coverage *= 1.0 - rng.uniform(0, 0.35) * s * (0.5 + 0.5 * _smooth_noise(rng, shape, 6))
    image = background + (ink - background) * coverage
    sigma = rng.uniform(0.0, 1.3) * s * scale * box_h / 32.0
    if sigma > 0.3:
        from skimage.filters import gaussian
        image = gaussian(image, sigma=sigma, preserve_range=True).astype(np.float32)
    if s > 0:
        # sensor noise, at most a quarter of the contrast so a faint word stays legible
        noise = rng.uniform(0.0, 0.05) * s * min(1.0, 4 * contrast)
        image = image + rng.normal(0.0, noise, size=shape).astype(np.float32)
    image = np.clip(image, 0.0, 1.0)
    if rng.random() < 0.3 * s:
        image = _jpeg(image, rng.uniform(15, 80))
    return (np.round(image * 255.0) / 255.0).astype(np.float32)


class PrintedWords(Dataset):
    """Item: (image float32 (1, height, width) in [0, 1], text str): a text of
    nnlite.data.words.TextSampler (words of `words`, default the shipped
    list less its held-out words) in a face of `families` (default
    nnlite.data.fonts.TRAINING_FAMILIES), rendered by render_natural and
    fitted by images.fit_word. Augmentation strength: `curriculum`
    (a function of the step = index // items_per_step) when given, else the
    fixed `strength`."""

    def __init__(self, size, seed=0, families=fonts.TRAINING_FAMILIES, words=None,
                 max_length=word_lists.MAX_LENGTH, height=32, width=128, strength=1.0,
                 curriculum=None, items_per_step=1):
        for name, value in (("size", size), ("seed", seed)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"PrintedWords: {name} must be a non-negative int, got "
                                 f"{value!r}")
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"PrintedWords: strength must be in [0, 1], got {strength!r}")
        if isinstance(items_per_step, bool) or int(items_per_step) != items_per_step \
                or items_per_step < 1:
            raise ValueError(f"PrintedWords: items_per_step must be a positive int, got "
                             f"{items_per_step!r}")
        self.size, self.seed = int(size), int(seed)
        self.families = fonts.check_families(families)
        self.faces = fonts.faces(self.families)
        self.sampler = word_lists.TextSampler(words, max_length=max_length)
        self.height, self.width = int(height), int(width)
        self.strength, self.curriculum = float(strength), curriculum
        self.items_per_step = int(items_per_step)

    def __len__(self):
        return self.size

    def strength_of(self, index):
        if self.curriculum is None:
            return self.strength
        return float(self.curriculum(index // self.items_per_step))

    def natural(self, index):
        """(natural-size image, text, face) of item `index`, before fitting."""
        index = self._check_index(index)
        rng = np.random.default_rng([self.seed, index])
        text = self.sampler(rng)
        face = self.faces[rng.integers(len(self.faces))]
        return render_natural(text, face, rng, self.strength_of(index)), text, face

    def __getitem__(self, index):
        image, text, _ = self.natural(index)
        return fit_word(image, self.height, self.width)[None].astype(np.float32), text
