"""Per-position accuracy of a trained CharNet on the recipe's held-out words:

    python scripts/charnet_positions.py /work/runs/charnet-adam-clean10/best.h5 \
        --clean --max-length 10

For each of the 23 heads: how often its argmax is the true class (a
character or the padding space), over the validation words that have a
character there and over all words; then the word and character accuracy
of the recipe's metric. Give the data options the run was trained with."""
import argparse

import numpy as np

import nnlite as nl
from nnlite import io
from nnlite.models import jaderberg as jb
from nnlite.models import jaderberg_train as jt


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--max-length", type=int, default=jb.MAX_LENGTH)
    parser.add_argument("--clean", action="store_true")
    parser.add_argument("--layout", default="centred", choices=("centred", "crop"))
    parser.add_argument("--val-size", type=int, default=jt.VAL_SIZE)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    recipe = jt.training_recipe(seed=args.seed, max_length=args.max_length, show=0,
                                val_size=args.val_size, augment=not args.clean,
                                layout=args.layout)
    model = jt.build_for_checkpoint(args.checkpoint, "charnet")
    io.load(args.checkpoint, model)
    model.eval()
    ids, labels, texts = [], [], []
    with nl.no_grad():
        for images, batch_texts in recipe.val_loader:
            logits = model(nl.tensor(jt.normalise(images)))
            ids.append(np.asarray(logits.numpy()).argmax(axis=2))
            labels.append(jb.encode_words(batch_texts))
            texts += list(batch_texts)
    ids, labels = np.concatenate(ids), np.concatenate(labels)
    right = ids == labels
    has_char = labels != jb.SPACE
    print(f"{len(texts)} held-out words; chance for a character is 1/36 = {1 / 36:.3f}")
    print("position  words with a char there  acc on those  acc on all words")
    for p in range(jb.MAX_LENGTH):
        on_chars = right[has_char[:, p], p].mean() if has_char[:, p].any() else float("nan")
        count = int(has_char[:, p].sum())
        print(f"{p:8d}  {count:22d}  {on_chars:12.3f}  {right[:, p].mean():16.3f}")
    metrics = jt.charnet_metrics(jb.decode_charnet(nl.tensor(_one_hot(ids))), texts)
    print(f"word accuracy {metrics['word_accuracy']:.4f}, character accuracy "
          f"{metrics['character_accuracy']:.4f}")


def _one_hot(ids):
    return np.eye(jb.NUM_CHAR_CLASSES, dtype=np.float32)[ids]


if __name__ == "__main__":
    main()
