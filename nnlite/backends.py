"""Process-wide algorithm switches, read at every call (as torch.backends.cudnn).

``conv_algorithm`` picks how ``F.conv2d`` / ``nn.Conv2d`` compute a
convolution whose call or layer does not name an algorithm itself:

* ``"auto"``: per shape, by the rule in
  ``nnlite.functional.conv.choose_algorithm``: Winograd F(2x2, 3x3) for 3x3,
  stride-1, dilation-1 layers with enough channels to pay for the transforms,
  the direct convolution for other stride-1, dilation-1 layers with at most 24
  output channels (where im2col's GEMMs are skinny), im2col + GEMM everywhere
  else;
* ``"im2col"`` (the default for now): im2col + GEMM everywhere (the general
  path, and the oracle the others are tested against). "auto" is measured
  faster, but the README's main-job figures were measured with im2col; it
  becomes the default once that run is measured again under it;
* ``"direct"``: the direct (implicit-GEMM) convolution, no column matrix,
  wherever its host loops' bound on zero-extended planes allows (every layer
  but those with a huge dilation or stride), im2col for the others;
* ``"winograd"``: Winograd F(2x2, 3x3) wherever it applies (3x3, stride 1,
  dilation 1), im2col for the other layers, so a whole network runs with it.

An algorithm named by a call or a layer (``F.conv2d(..., algorithm="winograd")``,
``nn.Conv2d(..., algorithm="winograd")``) is a demand rather than a preference:
it raises ValueError where it does not apply.

The environment variable ``NNLITE_CONV_ALGORITHM`` sets the starting value.
"""
import os

CONV_ALGORITHMS = ("auto", "im2col", "direct", "winograd")

conv_algorithm = os.environ.get("NNLITE_CONV_ALGORITHM", "im2col")


def check_conv_algorithm(value, where):
    """`value` if it names a convolution algorithm, else ValueError naming `where`."""
    if value not in CONV_ALGORITHMS:
        raise ValueError(f"{where} = {value!r} is not a convolution algorithm; expected one of "
                         f"{', '.join(repr(a) for a in CONV_ALGORITHMS)}")
    return value
