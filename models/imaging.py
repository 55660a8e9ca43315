"""Image helpers the seed models' preprocessing shares (NumPy only).

The bilinear resize uses half-pixel centres with clamped edges: what
scikit-image's ``resize(order=1, mode="edge", anti_aliasing=False)``, OpenCV's
INTER_LINEAR and PyTorch's ``interpolate(mode="bilinear", align_corners=False)``
compute. A small NumPy version keeps preprocessing free of a dependency
(scikit-image is not in pyproject's dependencies).
"""
import numpy as np


def resize_bilinear(image, height, width):
    """Bilinear resize of an (H, W) or (H, W, C) array to (height, width[, C])."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim not in (2, 3) or min(image.shape[:2]) < 1:
        raise ValueError(f"resize_bilinear: expected a non-empty (H, W) or (H, W, C) image, "
                         f"got shape {image.shape}")
    if height < 1 or width < 1:
        raise ValueError(f"resize_bilinear: output size must be positive, got "
                         f"({height}, {width})")

    def axis(out_size, in_size):
        centres = (np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5
        centres = np.clip(centres, 0, in_size - 1)
        low = np.floor(centres).astype(np.int64)
        high = np.minimum(low + 1, in_size - 1)
        return low, high, centres - low

    rows_low, rows_high, row_frac = axis(height, image.shape[0])
    cols_low, cols_high, col_frac = axis(width, image.shape[1])
    extra = (1,) * (image.ndim - 2)  # broadcast the fractions over channels
    row_frac = row_frac.reshape((-1, 1) + extra)
    col_frac = col_frac.reshape((1, -1) + extra)
    top, bottom = image[rows_low], image[rows_high]
    top = top[:, cols_low] * (1 - col_frac) + top[:, cols_high] * col_frac
    bottom = bottom[:, cols_low] * (1 - col_frac) + bottom[:, cols_high] * col_frac
    return top * (1 - row_frac) + bottom * row_frac
