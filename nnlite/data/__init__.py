"""nnlite.data: datasets, a prefetching resumable DataLoader, seeded synthetic
generators for the seed networks, and loaders for real datasets on disk.

Synthetic (pure functions of (seed, index); nothing stored):
    SyntheticWords, SyntheticLetters, SyntheticDigitSequences,
    arithmetic_task, identity_task, integer_addition_task
Printed text (nnlite.data.printed, .benchmark, .fonts, .words):
    PrintedWords (training renders, Curriculum), UnseenFontsBenchmark
    (held-out fonts and words, another renderer), english_words
Real (files users have): MJSynth, SVHN, MNIST, ImageFolderWithLabels
Plumbing: Dataset, ArrayDataset/TensorDataset, Subset, random_split,
    materialize, DataLoader, default_collate, DataLoaderError
"""
from nnlite.data.dataset import (ArrayDataset, Dataset, MaterializedDataset, Subset,  # noqa: F401
                                 TensorDataset, materialize, random_split)
from nnlite.data.loader import DataLoader, DataLoaderError, default_collate  # noqa: F401
from nnlite.data.arithmetic import (arithmetic_task, identity_task,  # noqa: F401
                                    integer_addition_task, near_perfect_mse, subset_slices)
from nnlite.data.synthetic import (SyntheticDigitSequences, SyntheticLetters,  # noqa: F401
                                   SyntheticWords, load_lexicon)
from nnlite.data.printed import Curriculum, PrintedWords  # noqa: F401
from nnlite.data.benchmark import UnseenFontsBenchmark  # noqa: F401
from nnlite.data.words import english_words  # noqa: F401
from nnlite.data.images import ImageFolderWithLabels, MJSynth, read_image  # noqa: F401
from nnlite.data.mnist import MNIST, read_idx  # noqa: F401
from nnlite.data.svhn import SVHN, read_digit_struct  # noqa: F401
