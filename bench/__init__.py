"""Kernel microbenchmarks: `python -m bench` from the repository root.

Each case times nnlite's kernel beside the comparisons present (the NumPy/CuPy
reference always, PyTorch when installed) at the shapes the seed networks use.
A kernel family adds bench/cases/<family>.py and one import in bench/cases/__init__.py.
"""
