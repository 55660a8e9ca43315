"""Process-wide algorithm switches, read at every call (as torch.backends.cudnn).

``conv_algorithm`` picks how ``F.conv2d`` / ``nn.Conv2d`` compute a
convolution whose call or layer does not name an algorithm itself:

* ``"auto"`` (the default): per shape, by the rule in
  ``nnlite.functional.conv.choose_algorithm``: Winograd for 3x3, stride-1,
  dilation-1 layers with enough channels to pay for the transforms, the
  direct convolution for other stride-1, dilation-1 layers with at most 24
  output channels (where im2col's GEMMs are skinny), im2col + GEMM
  everywhere else (README "Convolution and pooling");
* ``"im2col"``: im2col + GEMM everywhere (the general path, and the oracle
  the others are tested against);
* ``"direct"``: the direct (implicit-GEMM) convolution, no column matrix,
  wherever its host loops' bound on zero-extended planes allows (every layer
  but those with a huge dilation or stride), im2col for the others;
* ``"winograd"``: Winograd wherever it applies (3x3, stride 1, dilation 1),
  im2col for the other layers, so a whole network runs with it.

An algorithm named by a call or a layer (``F.conv2d(..., algorithm="winograd")``,
``nn.Conv2d(..., algorithm="winograd")``) is a demand rather than a preference:
it raises ValueError where it does not apply.

``winograd_tile`` picks the Winograd variant: None (the default) takes
F(4x4, 3x3) where the output is at least 3x3 and F(2x2, 3x3) on smaller
ones; 4 or 2 forces one. F(4x4, 3x3) does 4x fewer multiplications than
im2col (F(2x2, 3x3): 2.25x) and is faster on every layer we measured, but its
float32 rounding error is about 25x im2col's (up to 9.3e-6 of the output's
largest value at 512 input channels, against 6.7e-7 for F(2x2, 3x3); README).

The environment variables ``NNLITE_CONV_ALGORITHM`` and
``NNLITE_WINOGRAD_TILE`` (2 or 4) set the starting values.
"""
import os

CONV_ALGORITHMS = ("auto", "im2col", "direct", "winograd")
WINOGRAD_TILES = (None, 2, 4)

conv_algorithm = os.environ.get("NNLITE_CONV_ALGORITHM", "auto")
winograd_tile = os.environ.get("NNLITE_WINOGRAD_TILE") or None
if winograd_tile in ("2", "4"):
    winograd_tile = int(winograd_tile)


def check_conv_algorithm(value, where):
    """`value` if it names a convolution algorithm, else ValueError naming `where`."""
    if value not in CONV_ALGORITHMS:
        raise ValueError(f"{where} = {value!r} is not a convolution algorithm; expected one of "
                         f"{', '.join(repr(a) for a in CONV_ALGORITHMS)}")
    return value


def check_winograd_tile(value):
    """`value` if it names a Winograd variant, else ValueError."""
    if isinstance(value, bool) or value not in WINOGRAD_TILES:
        raise ValueError(f"nnlite.backends.winograd_tile = {value!r}; expected None (by output "
                         f"size), 2 (F(2x2, 3x3)) or 4 (F(4x4, 3x3))")
    return value
