"""`python -m nnlite ...`: the `nnlite` command, where its script is not on PATH."""
import sys

from nnlite.cli import main

sys.exit(main())
