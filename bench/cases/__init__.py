"""Importing a case module registers its cases with bench.harness."""
from bench.cases import softmax  # noqa: F401
from bench.cases import rnn  # noqa: F401
from bench.cases import ctc  # noqa: F401
