"""Importing a case module registers its cases with bench.harness."""
from bench.cases import softmax  # noqa: F401
from bench.cases import conv  # noqa: F401,E402
from bench.cases import pool  # noqa: F401,E402
