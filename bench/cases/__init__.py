"""Importing a case module registers its cases with bench.harness."""
from bench.cases import (activation, conv, ctc, dequant, models, models_attention, models_digits,  # noqa: F401
                         pool, rnn, softmax)
