"""nn.CTCLoss: PyTorch's module over nnlite.functional.ctc_loss."""
from nnlite.functional.ctc import ctc_loss
from nnlite.nn.loss import _Loss


class CTCLoss(_Loss):
    """Connectionist temporal classification loss of log_probs (T, N, C).

    ``forward(log_probs, targets, input_lengths, target_lengths)``; see
    ``nnlite.functional.ctc_loss`` for the layouts and reductions."""

    def __init__(self, blank=0, reduction="mean", zero_infinity=False):
        super().__init__(reduction)
        self.blank = blank
        self.zero_infinity = zero_infinity

    def forward(self, log_probs, targets, input_lengths, target_lengths):
        return ctc_loss(log_probs, targets, input_lengths, target_lengths, self.blank,
                        self.reduction, self.zero_infinity)

    def extra_repr(self):
        parts = [f"blank={self.blank}"]
        if self.reduction != "mean":
            parts.append(f"reduction={self.reduction!r}")
        if self.zero_infinity:
            parts.append("zero_infinity=True")
        return ", ".join(parts)
