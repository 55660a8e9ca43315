"""Compressed replacements of a trained Linear, for memory budgets such as the
TK1's (nnlite.compression applies them to a model; ``nnlite compress`` to a
checkpoint).

``LowRankLinear(in, out, rank)``: y = (x V^T) U^T + b, two GEMMs through a
rank-`rank` bottleneck, as the sub-layers ``down`` (Linear(in, rank, no bias),
weight V) and ``up`` (Linear(rank, out), weight U and the bias). It stores
rank * (in + out) weights instead of in * out, so it saves memory only when
rank < in * out / (in + out) (``saves_memory``). ``from_linear`` builds it by
truncated SVD of the trained weight W = U_full S V_full^T: U = U_r S_r^1/2,
V = S_r^1/2 V_r^T, the best rank-r approximation of W in Frobenius and
spectral norm (Eckart-Young); the square roots split S evenly so both factors
have rows of similar scale (which also suits int8 storage of the factors).

``QuantizedLinear(in, out, storage)``: the weight stored as "float16", or as
"int8" with one float32 scale per output row (symmetric: scale = max |w_row|
/ 127, q = round(w / scale)), and float32 compute: F.quantized_linear
dequantises chunks of rows into a bounded workspace right before each GEMM.
The stored weight is a buffer (it keeps its dtype through model.double() and
gets no gradient); the int8 scale and the bias are Parameters, so fine-tuning
trains them. Error bounds: |w - dequant(q)| <= scale / 2 per entry for int8;
float16 rounds to 11 significant bits (relative error <= 2^-11) and refuses
weights beyond its range (65504).
"""
import numpy as np

from nnlite import device as _device
from nnlite import functional as F
from nnlite.functional import quantized as _quantized
from nnlite.nn import init
from nnlite.nn.linear import Linear, empty_parameter
from nnlite.nn.meta import building_meta
from nnlite.nn.module import Module
from nnlite.tensor import Tensor

# A weight is quantised or decomposed a block of rows (or columns) at a time,
# each block's float64 temporaries at most this many bytes.
_BLOCK_BYTES = 16 * 2**20
FLOAT16_MAX = 65504.0


def block_rows(width, itemsize=8):
    """Rows of `width` elements of `itemsize` bytes that fit one block (at least one)."""
    return max(1, _BLOCK_BYTES // max(1, width * itemsize))


def _check_features(op, **values):
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{op}: {name} must be a positive int, got {value!r}")


def max_saving_rank(in_features, out_features):
    """The largest rank whose two factors store fewer weights than the dense
    matrix: r < in * out / (in + out)."""
    return (in_features * out_features - 1) // (in_features + out_features)


def saves_memory(in_features, out_features, rank):
    return rank * (in_features + out_features) < in_features * out_features


class LowRankLinear(Module):
    """A Linear(in_features, out_features) of rank `rank`: ``up(down(x))``
    (see the module docstring). ``storage`` "float32" (default), "float16" or
    "int8" stores both factors that way (QuantizedLinear sub-layers)."""

    def __init__(self, in_features, out_features, rank, bias=True, device=None, dtype=None,
                 storage="float32"):
        super().__init__()
        _check_features("LowRankLinear", in_features=in_features, out_features=out_features,
                        rank=rank)
        if rank > min(in_features, out_features):
            raise ValueError(f"LowRankLinear: rank {rank} exceeds min(in_features, "
                             f"out_features) = {min(in_features, out_features)}")
        self.in_features, self.out_features, self.rank = int(in_features), int(out_features), \
            int(rank)
        if storage == "float32":
            self.down = Linear(in_features, rank, bias=False, device=device, dtype=dtype)
            self.up = Linear(rank, out_features, bias=bias, device=device, dtype=dtype)
        else:
            self.down = QuantizedLinear(in_features, rank, storage, bias=False, device=device)
            self.up = QuantizedLinear(rank, out_features, storage, bias=bias, device=device)

    @property
    def storage(self):
        return getattr(self.down, "storage", "float32")

    @classmethod
    def from_linear(cls, linear, rank, spectrum=None):
        """The rank-`rank` truncated SVD of a trained Linear (float32 factors,
        same dtype and device as its weight). Refuses a rank that would not
        save memory. `spectrum`: gram_spectrum(weight), if already computed."""
        _check_features("LowRankLinear.from_linear", rank=rank)
        out_features, in_features = linear.weight.shape
        if not saves_memory(in_features, out_features, rank):
            raise ValueError(f"LowRankLinear.from_linear: rank {rank} of a {in_features} -> "
                             f"{out_features} Linear stores {rank * (in_features + out_features):,}"
                             f" weights, not fewer than the dense {in_features * out_features:,}"
                             f"; a saving rank is at most "
                             f"{max_saving_rank(in_features, out_features)}")
        weight = _device.to_numpy(linear.weight.data)
        up, down = truncated_svd_factors(weight, rank, spectrum, dtype=weight.dtype)
        layer = cls(in_features, out_features, rank, bias=linear.bias is not None,
                    dtype=weight.dtype, device="meta")
        layer.to_empty(device=linear.weight.device)
        layer.up.weight.data[...] = _device.move(up, linear.weight.device)
        layer.down.weight.data[...] = _device.move(down, linear.weight.device)
        del up, down
        if linear.bias is not None:
            layer.up.bias.data[...] = linear.bias.data
        return layer

    def forward(self, x):
        return self.up(self.down(x))

    def dense_weight(self):
        """U V (out_features, in_features) as a NumPy float64 array (for tests and reports)."""
        return _dense(self.up) @ _dense(self.down)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"rank={self.rank}")


def _dense(layer):
    if isinstance(layer, QuantizedLinear):
        return layer.dense_weight()
    return _device.to_numpy(layer.weight.data).astype(np.float64)


def gram_spectrum(weight):
    """(eigenvalues descending, eigenvectors) of the Gram matrix of `weight`
    over its smaller side (W W^T if out <= in, else W^T W), accumulated in
    float64 over chunks of the larger side, so the largest temporary is the
    Gram matrix (DictNet's classifier: 4096^2 float64 = 128 MiB), never a
    float64 copy of the weight."""
    weight = np.asarray(weight)
    rows, cols = weight.shape
    small = min(rows, cols)
    gram = np.zeros((small, small), dtype=np.float64)
    if rows <= cols:
        step = block_rows(rows)
        for c0 in range(0, cols, step):
            block = weight[:, c0:c0 + step].astype(np.float64)
            gram += block @ block.T
    else:
        step = block_rows(cols)
        for r0 in range(0, rows, step):
            block = weight[r0:r0 + step].astype(np.float64)
            gram += block.T @ block
    values, vectors = np.linalg.eigh(gram)
    order = np.argsort(values)[::-1]
    return np.maximum(values[order], 0.0), vectors[:, order]


def singular_values(weight):
    """All singular values of `weight`, descending (from its Gram matrix)."""
    return np.sqrt(gram_spectrum(weight)[0])


def truncated_svd_factors(weight, rank, spectrum=None, dtype=np.float64):
    """(up (out, rank), down (rank, in)) of `dtype` with up @ down the best rank-`rank`
    approximation of `weight` (out, in), split as U S^1/2 and S^1/2 V^T.
    Small matrices use LAPACK's SVD; large ones the Gram matrix of the smaller
    side (gram_spectrum): the leading singular vectors to float64 precision
    relative to the largest singular value."""
    weight = np.asarray(weight)
    rows, cols = weight.shape
    if rows * cols <= 2**22:
        u, s, vt = np.linalg.svd(weight.astype(np.float64), full_matrices=False)
        root = np.sqrt(s[:rank])
        return (u[:, :rank] * root).astype(dtype), (root[:, None] * vt[:rank]).astype(dtype)
    values, vectors = gram_spectrum(weight) if spectrum is None else spectrum
    sigma = np.sqrt(values[:rank])
    kept = sigma > 0
    safe = np.where(kept, sigma, 1.0)
    basis = vectors[:, :rank]
    if rows <= cols:  # basis = left singular vectors U_r (rows x rank)
        up = (basis * np.sqrt(sigma)).astype(dtype)
        down = np.empty((rank, cols), dtype=dtype)
        step = block_rows(rows)
        for c0 in range(0, cols, step):
            block = weight[:, c0:c0 + step].astype(np.float64)
            # V_r^T = S^-1 U_r^T W; down = S^1/2 V_r^T = S^-1/2 U_r^T W
            down[:, c0:c0 + step] = np.where(kept[:, None], (basis.T @ block)
                                             / np.sqrt(safe)[:, None], 0.0)
        return up, down
    # basis = right singular vectors V_r (cols x rank)
    down = (basis * np.sqrt(sigma)).T.astype(dtype)
    up = np.empty((rows, rank), dtype=dtype)
    step = block_rows(cols)
    for r0 in range(0, rows, step):
        block = weight[r0:r0 + step].astype(np.float64)
        up[r0:r0 + step] = np.where(kept[None, :], (block @ basis) / np.sqrt(safe), 0.0)
    return up, down


def _storage_buffer(shape, dtype, device):
    """The stored weight: a MetaArray on the meta device, else zeros."""
    if (device is None and building_meta()) or \
            (device is not None and _device.canonical(device) == "meta"):
        return Tensor(_device.MetaArray(shape, dtype))
    return Tensor(_device.xp("cpu" if device is None else device).zeros(shape, dtype=dtype))


class QuantizedLinear(Module):
    """y = x dequant(W)^T + b with W stored as "float16" or "int8" (one scale
    per output row); compute in float32 (see the module docstring).

    State: ``weight`` (buffer, int8 or float16, (out, in)), ``weight_scale``
    (int8 only: Parameter (out,) float32), ``bias`` (Parameter (out,)).
    A fresh layer holds zero weights; fill it with ``from_linear`` or a checkpoint.
    """

    STORAGES = ("float16", "int8")
    _keep_dtype = ("weight",)  # model.double() leaves the stored weight as it is

    def __init__(self, in_features, out_features, storage="int8", bias=True, device=None,
                 dtype=None):
        super().__init__()
        _check_features("QuantizedLinear", in_features=in_features, out_features=out_features)
        if storage not in self.STORAGES:
            raise ValueError(f"QuantizedLinear: storage={storage!r} is not one of "
                             f"{self.STORAGES}")
        self.in_features, self.out_features, self.storage = int(in_features), \
            int(out_features), storage
        self.register_buffer("weight", _storage_buffer((out_features, in_features),
                                                       np.dtype(storage), device))
        if storage == "int8":
            self.weight_scale = empty_parameter((out_features,), device, dtype)
        else:
            self.register_parameter("weight_scale", None)
        if bias:
            self.bias = empty_parameter((out_features,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        if not _device.is_meta(self.weight.data):
            self.weight.data[...] = 0
        if self.weight_scale is not None:
            init.ones_(self.weight_scale)
        if self.bias is not None:
            init.zeros_(self.bias)

    @classmethod
    def from_linear(cls, linear, storage="int8"):
        """Quantise a trained Linear (or any module with a 2-D ``weight`` and
        an optional ``bias``), row chunk by row chunk."""
        weight = linear.weight.data
        out_features, in_features = weight.shape
        device = linear.weight.device
        layer = cls(in_features, out_features, storage, bias=linear.bias is not None,
                    device="meta", dtype=weight.dtype)
        layer.to_empty(device=device)
        quantize_into(weight, layer.weight.data,
                      None if layer.weight_scale is None else layer.weight_scale.data)
        if linear.bias is not None:
            layer.bias.data[...] = linear.bias.data
        return layer

    def forward(self, x):
        scale = self.weight_scale
        if scale is not None and scale.dtype != x.dtype:
            scale = scale.to(dtype=x.dtype)
        return F.quantized_linear(x, self.weight, scale, self.bias)

    def dense_weight(self):
        """The dequantised weight (out, in) as a NumPy float64 array."""
        q = _device.to_numpy(self.weight.data).astype(np.float64)
        if self.weight_scale is None:
            return q
        return q * _device.to_numpy(self.weight_scale.data).astype(np.float64)[:, None]

    def workspace_bytes(self, input_shape=None):
        """Bytes of the float32 dequantisation workspace one forward allocates."""
        itemsize = 4 if self.bias is None else self.bias.data.dtype.itemsize
        return _quantized.workspace_bytes(self.out_features, self.in_features, itemsize)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"storage={self.storage!r}, bias={self.bias is not None}")


def quantize_into(weight, stored, scale=None):
    """Quantise `weight` (out, in) into the preallocated `stored` (int8 or
    float16) and `scale` (out,) for int8, a chunk of rows at a time."""
    xp = _device.xp_of(weight)
    rows = weight.shape[0]
    step = block_rows(weight.shape[1] if weight.ndim == 2 else 1, 4)
    for r0 in range(0, rows, step):
        block = weight[r0:r0 + step]
        if stored.dtype == np.float16:
            peak = float(xp.abs(block).max()) if block.size else 0.0
            if not np.isfinite(peak) or peak > FLOAT16_MAX:
                raise ValueError(f"quantize: the weight holds {peak:g}, beyond float16's range "
                                 f"(+-{FLOAT16_MAX:g}); use int8 storage (scaled per row)")
            stored[r0:r0 + step] = block.astype(np.float16)
            continue
        if not bool(xp.isfinite(block).all()):
            raise ValueError("quantize: the weight holds NaN or infinity; int8 cannot store it")
        peak = xp.abs(block).max(axis=1) if block.shape[1] else xp.zeros(block.shape[0])
        row_scale = xp.where(peak > 0, peak / 127.0, 1.0).astype(weight.dtype)
        stored[r0:r0 + step] = xp.clip(xp.rint(block / row_scale[:, None]), -127, 127)
        scale[r0:r0 + step] = row_scale
