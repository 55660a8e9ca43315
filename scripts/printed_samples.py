"""A contact sheet of the printed-text data, to look at what the reader sees:

    python scripts/printed_samples.py sheet.png [--seed S] [--count N]

Rows of N items each (default 8), every item as the model gets it
(32x128, after images.fit): training renders (nnlite.data.PrintedWords) at
augmentation strengths 0, 0.5 and 1, then the unseen-fonts benchmark
(nnlite.data.UnseenFontsBenchmark). The texts are printed in the same order."""
import argparse

import numpy as np
from PIL import Image

from nnlite.data import PrintedWords, UnseenFontsBenchmark


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="PNG file to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=8, help="items per row (default 8)")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error(f"--count must be positive, got {args.count}")
    sources = [(f"training, strength {s}", PrintedWords(args.count, seed=args.seed, strength=s))
               for s in (0.0, 0.5, 1.0)]
    sources.append(("unseen-fonts benchmark", UnseenFontsBenchmark()))
    rows = []
    for name, data in sources:
        items = [data[i] for i in range(args.count)]
        print(f"{name}: {' '.join(text for _, text in items)}")
        rows.append(np.concatenate([np.pad(image[0], 2, constant_values=0.5)
                                    for image, _ in items], axis=1))
    sheet = np.round(np.concatenate(rows, axis=0) * 255).astype(np.uint8)
    try:
        Image.fromarray(sheet, "L").save(args.out)
    except (OSError, ValueError) as exc:
        parser.error(f"cannot write {args.out!r}: {exc}")
    print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
    main()
