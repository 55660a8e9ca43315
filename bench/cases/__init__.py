"""Importing a case module registers its cases with bench.harness."""
from bench.cases import conv, ctc, dequant, models, pool, rnn, softmax  # noqa: F401
