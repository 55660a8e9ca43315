"""The measured accuracy cost of compressing a DictNet (docs/RESULTS.md,
"DictNet compression"). Three stages, each resumable:

    python scripts/dictnet_compression.py features --out /work/runs/i17/exp
    python scripts/dictnet_compression.py train    --out /work/runs/i17/exp --steps 3000 [--resume]
    python scripts/dictnet_compression.py compress --out /work/runs/i17/exp --budget 96MiB

The network is DictNet at the seed's layer widths (conv 64-128-256-512-512,
fc 4096-4096) with a softmax over a synthetic lexicon of --words random
lower-case words (default 1,000; models.jaderberg_train.synthetic_lexicon).

What is trained, and why: on this machine (2 shared CPU cores) end-to-end
training of the 134M-parameter network ran at 2-20 s per step of 32 images
and stayed on the uniform-prediction plateau (loss ln 1000) for the first
200 steps. So the five convolutions keep their He initialisation (seed 0)
and only the fully connected layers, 99% of the parameters and the only
ones compression touches, are trained, by the ordinary Trainer, on conv5
features computed once ("features": augmented renders of every word, the
recipe's SyntheticWords rendering; held-out augmented renders and one clean
render per word for validation). Every figure is therefore the accuracy of the
whole network (convolutions included) on those images.

"compress" loads the best head, applies each method (svd, fp16, int8,
svd+int8; ranks chosen for --budget, the batch-1 inference memory of the
whole network), evaluates, fine-tunes with the Trainer (--finetune-steps;
trainable: whatever the method leaves as parameters) and evaluates again;
results go to OUT/results.json and compressed full-network checkpoints to
OUT/dictnet-<method>.h5 (readable by nnlite summary/eval/predict).
"""
import argparse
import copy
import json
import os
import sys
import time

import numpy as np

import nnlite as nl
from nnlite import nn

INPUT = (1, 32, 100)


def build_network(words, seed=0):
    from nnlite.models import jaderberg_train as jt
    nl.manual_seed(seed)
    model = jt.build("dictnet", "seed", num_words=words)
    jt.he_init(model)
    return model


class Head(nn.Module):
    """fc1 -> ReLU -> dropout -> fc2 -> ReLU -> dropout -> classifier of a
    JaderbergNet, sharing its layers (so compressing the network compresses the
    head). dropout=False trains without it (the network keeps its Dropout
    layers; at inference they do nothing either way)."""

    def __init__(self, network, dropout=True):
        super().__init__()
        self.fc1, self.fc2 = network.fc1, network.fc2
        self.classifier = network.classifier
        self.dropout = network.dropout if dropout else nn.Identity()

    def forward(self, features):
        F = nl.functional
        x = self.dropout(F.relu(self.fc1(features)))
        x = self.dropout(F.relu(self.fc2(x)))
        return self.classifier(x)


def conv_features(network, images, batch=64):
    from nnlite.models import jaderberg_train as jt
    network.eval()
    out = np.empty((len(images), 26624), np.float32)
    with nl.no_grad():
        for start in range(0, len(images), batch):
            x = nl.tensor(jt.normalise(images[start:start + batch]))
            trace = dict(network.trace(x))
            out[start:start + batch] = trace["conv5"].numpy().reshape(len(x), -1)
            print(f"  features {start + len(x)}/{len(images)}", flush=True)
    return out


def render(words, per_word, seed, augment):
    from nnlite.data import SyntheticWords
    from nnlite.models import jaderberg as jb
    data = SyntheticWords(1, jb.ALPHABET, height=32, width=100, max_length=10, seed=seed,
                          lexicon=words, augment=augment)
    images, ids = [], []
    for i, word in enumerate(words):
        for k in range(per_word):
            images.append(data.render(word, np.random.default_rng([seed, i, k])))
            ids.append(i)
    return np.stack(images), np.array(ids, np.int64)


def stage_features(args):
    from nnlite.models import jaderberg_train as jt
    os.makedirs(args.out, exist_ok=True)
    words = jt.synthetic_lexicon(args.words)
    network = build_network(args.words)
    nl.io.save(os.path.join(args.out, "network-init.h5"), network, words=args.words, seed=0)
    for name, per_word, seed, augment in (("val_clean", 1, 0, False),
                                          ("val_aug", args.val_per_word, 7919, True),
                                          ("train", args.train_per_word, 1, True)):
        path = os.path.join(args.out, f"{name}.npz")
        if os.path.exists(path):
            continue
        t = time.time()
        images, ids = render(words, per_word, seed, augment)
        features = conv_features(network, images)
        np.save(os.path.join(args.out, f"{name}_features.npy"), features)
        np.savez(path, ids=ids)
        print(f"{name}: {len(ids)} images, {time.time() - t:.0f} s", flush=True)


class Features:
    """(conv5 features, word id) items, optionally standardised per feature
    ((x - mean) / std over the training set) for training the head: the raw
    features are all >= 0 with a large common mode, which made every step
    move all of fc1's pre-activations together. fold_standardisation puts
    the same affine map into fc1 afterwards, so the network stays DictNet."""

    def __init__(self, features, ids, stats=None):
        self.features, self.ids, self.stats = features, ids, stats

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        x = np.asarray(self.features[index], dtype=np.float32)
        if self.stats is not None:
            x = (x - self.stats[0]) / self.stats[1]
        return x, self.ids[index]


def standardisation(args):
    path = os.path.join(args.out, "standardise.npz")
    if not os.path.exists(path):
        features = np.load(os.path.join(args.out, "train_features.npy"), mmap_mode="r")
        mean = np.zeros(features.shape[1], np.float64)
        square = np.zeros(features.shape[1], np.float64)
        for start in range(0, len(features), 500):
            block = np.asarray(features[start:start + 500], dtype=np.float64)
            mean += block.sum(axis=0)
            square += (block ** 2).sum(axis=0)
        mean /= len(features)
        std = np.sqrt(np.maximum(square / len(features) - mean ** 2, 0))
        # A floor at a tenth of the median: nearly constant features would
        # otherwise fold into fc1 as columns 1000x larger than the rest, which
        # no per-row int8 scale can share.
        std = np.maximum(std, 0.1 * np.median(std))
        np.savez(path, mean=mean.astype(np.float32), std=std.astype(np.float32))
    stats = np.load(path)
    return stats["mean"], stats["std"]


def fold_standardisation(network, stats):
    """fc1((x - m) / s) == fc1'(x) with W' = W / s (per column), b' = b - W' m."""
    mean, std = stats
    weight = network.fc1.weight.data
    weight /= std[None, :]
    network.fc1.bias.data -= weight @ mean


def loaders(args, batch=64, standardised=False):
    from nnlite.data import DataLoader
    stats = standardisation(args) if standardised else None
    sets = {}
    for name in ("train", "val_aug", "val_clean"):
        features = np.load(os.path.join(args.out, f"{name}_features.npy"), mmap_mode="r")
        ids = np.load(os.path.join(args.out, f"{name}.npz"))["ids"]
        sets[name] = Features(features, ids, stats)
    train = DataLoader(sets["train"], batch_size=batch, shuffle=True, seed=0, drop_last=True)
    return train, {name: DataLoader(sets[name], batch_size=256) for name in ("val_aug",
                                                                              "val_clean")}


class BothValidations:
    """ClassificationTask whose evaluate reports held-out augmented renders
    (the metric) and the clean render of every word."""
    metric_name = "accuracy"
    higher_is_better = True

    def __init__(self, clean_loader):
        from nnlite.training import ClassificationTask
        self.task, self.clean = ClassificationTask(), clean_loader

    def loss(self, model, batch):
        return self.task.loss(model, batch)

    def evaluate(self, model, loader):
        metrics = self.task.evaluate(model, loader)
        clean = self.task.evaluate(model, self.clean)
        return {**metrics, "clean_accuracy": clean["accuracy"], "clean_loss": clean["loss"]}


def network_with_head(args, head_checkpoint=None):
    """The whole network: convolutions from network-init.h5, fc layers from
    the trained head (its best.h5, trained on standardised features and
    folded back here)."""
    network = build_network(args.words)
    nl.io.load(os.path.join(args.out, "network-init.h5"), network)
    if head_checkpoint is not None:
        nl.io.load(head_checkpoint, Head(network))
        fold_standardisation(network, standardisation(args))
    return network


def trainer_for(args, head, out_dir, steps, lr, standardised=False, eval_every=None):
    """The ordinary Trainer on the head. Adam; fc1's rate is lr / 10 (and any
    layer named fc1.*): its 26,624 inputs make each Adam step move its
    pre-activations ~26,624 x lr x mean |x|; int8 row scales get lr / 100."""
    from nnlite.training import Trainer
    train, val = loaders(args, standardised=standardised)
    groups = {"wide": [], "scales": [], "rest": []}
    for name, param in head.named_parameters():
        if not param.requires_grad:
            continue
        if name.endswith("weight_scale"):
            groups["scales"].append(param)
        elif name.startswith("fc1"):
            groups["wide"].append(param)
        else:
            groups["rest"].append(param)
    # int8 row scales are ~1e-4: an Adam step of lr would change them by tens of percent.
    rates = {"wide": lr / 10, "scales": lr / 100, "rest": lr}
    optimizer = nl.optim.Adam([{"params": params, "lr": rates[key]}
                               for key, params in groups.items() if params], lr=lr)
    return Trainer(head, optimizer, BothValidations(val["val_clean"]), train, val["val_aug"],
                   steps=steps, out_dir=out_dir, eval_every=eval_every or args.eval_every,
                   log_every=10,
                   seed=0)


def stage_train(args):
    network = network_with_head(args)
    # A zero classifier starts at the uniform prediction (loss ln words)
    # instead of spending the first hundred steps shrinking random logits.
    nn.init.zeros_(network.classifier.weight)
    head = Head(network, dropout=args.dropout)
    trainer = trainer_for(args, head, os.path.join(args.out, "head"), args.steps, args.lr,
                          standardised=True)
    history = trainer.fit(resume=args.resume)
    for row in history["eval"]:
        print(row, flush=True)


def evaluate(head, args, reference=None):
    """Word accuracy and loss on the held-out augmented renders and on the
    clean renders, and (given `reference`, the uncompressed network's
    predicted words) how often the head predicts the same word."""
    _, val = loaders(args)
    head.eval()
    result, predictions = {}, {}
    with nl.no_grad():
        for name, prefix in (("val_aug", ""), ("val_clean", "clean_")):
            words, losses, correct, count = [], 0.0, 0, 0
            for features, ids in val[name]:
                logits = head(nl.tensor(features))
                losses += nl.functional.cross_entropy(logits, ids).item() * len(ids)
                guess = logits.numpy().argmax(axis=1)
                correct += int((guess == ids).sum())
                count += len(ids)
                words.append(guess)
            predictions[name] = np.concatenate(words)
            result[prefix + "accuracy"] = correct / count
            result[prefix + "loss"] = losses / count
            if reference is not None:
                result[prefix + "agreement"] = float((predictions[name] == reference[name]).mean())
    return result, predictions


def checkpoint_meta(path):
    """The JSON metadata of an nnlite checkpoint, without loading its arrays."""
    import h5py
    with h5py.File(path, "r") as f:
        return json.loads(np.asarray(f["meta"]).tobytes().decode("utf8"))


def stage_compress(args):
    from nnlite import compression
    from nnlite.model_summary import summary
    best = args.head or os.path.join(args.out, "head", "best.h5")
    network = network_with_head(args, best)
    results = {"budget": args.budget, "words": args.words, "head": best,
               "head_step": checkpoint_meta(best).get("step")}
    where = os.path.join(args.out, args.results)
    os.makedirs(where, exist_ok=True)
    path = os.path.join(where, "results.json")
    if os.path.exists(path):
        results = {**json.load(open(path)), **results}
    before = summary(network, INPUT, memory=args.budget)
    metrics, reference = evaluate(Head(network), args)
    results["uncompressed"] = {"param_bytes": before.totals["param_bytes"],
                               "required_bytes": before.totals["required_bytes"],
                               "fits": before.fits, **metrics}
    print("uncompressed", results["uncompressed"], flush=True)
    nl.io.save(os.path.join(where, "dictnet-float32.h5"), network)
    for method in args.methods:
        if method in results and "finetuned" in results[method]:
            continue
        model = copy.deepcopy(network)
        t = time.time()
        report = compression.compress(model, method, budget=args.budget, input_shape=INPUT)
        after = summary(model, INPUT, memory=args.budget)
        entry = {"report": report, "seconds": time.time() - t,
                 "param_bytes": after.totals["param_bytes"],
                 "required_bytes": after.totals["required_bytes"], "fits": after.fits,
                 "compressed": evaluate(Head(model), args, reference)[0]}
        print(method, compression.report_text(report), entry["compressed"], flush=True)
        nl.io.save(os.path.join(where, f"dictnet-{method}.h5"), model, method=method)
        head = Head(model, dropout=args.dropout)
        trainer = trainer_for(args, head, os.path.join(where, f"finetune-{method}"),
                              args.finetune_steps, args.finetune_lr,
                              eval_every=max(1, args.finetune_steps // 3))
        trainer.fit(overwrite=True)
        nl.io.load(trainer.best_path, head)
        entry["finetuned"] = {**evaluate(head, args, reference)[0],
                              "steps": args.finetune_steps,
                              "lr": args.finetune_lr,
                              "trainable_params": sum(p.numel() for p in head.parameters()
                                                      if p.requires_grad)}
        print(method, "fine-tuned", entry["finetuned"], flush=True)
        nl.io.save(os.path.join(where, f"dictnet-{method}-finetuned.h5"), model,
                   method=method)
        results[method] = entry
        with open(path, "w") as f:
            json.dump(results, f, indent=1, default=float)
    print(json.dumps(results, indent=1, default=float))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=("features", "train", "compress"))
    parser.add_argument("--out", required=True)
    parser.add_argument("--words", type=int, default=1000)
    parser.add_argument("--train-per-word", type=int, default=8)
    parser.add_argument("--val-per-word", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--dropout", action=argparse.BooleanOptionalAction, default=False,
                        help="train the head with DictNet's dropout 0.5 (default off: it "
                             "slowed the first steps several times over here)")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--budget", default="96MiB")
    parser.add_argument("--methods", nargs="+", default=["svd", "fp16", "int8", "svd+int8"])
    parser.add_argument("--results", default="compressed",
                        help="subdirectory of OUT for results.json and the checkpoints")
    parser.add_argument("--head", default=None, help="the head checkpoint to compress "
                        "(default OUT/head/best.h5)")
    parser.add_argument("--finetune-steps", type=int, default=100)
    parser.add_argument("--finetune-lr", type=float, default=3e-5)
    args = parser.parse_args(argv)
    {"features": stage_features, "train": stage_train, "compress": stage_compress}[args.stage](
        args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
