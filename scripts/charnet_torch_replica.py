"""CharNet's reduced-budget recipe beside a PyTorch replica (issue 16).

    python scripts/charnet_torch_replica.py compare --steps 5
    python scripts/charnet_torch_replica.py train --steps 600 --lr 0.01
    python scripts/charnet_torch_replica.py checks

compare: builds the recipe (models/jaderberg_train.training_recipe), copies
its initial weights into a PyTorch replica, and takes the same optimiser
steps on the same batches in both (dropout off in both, so the two runs are
deterministic), printing each step's loss and, at step 1, the largest
relative gradient difference per parameter.

train: trains the PyTorch replica alone on the recipe's batches (dropout as
the recipe's) and evaluates it on the recipe's validation set, to tell a
library bug from a recipe that cannot learn in the budget.
checks: the pieces on their own: a float64 gradcheck of the head's reshape
and the per-position loss at the real head size, dropout's mask statistics
and backward, the activations' scale through the initialised net, the
initial loss against ln 37.

Needs PyTorch (not an nnlite dependency)."""
import argparse
import time

import numpy as np
import torch
from torch import nn

import nnlite as nl
from nnlite.models import jaderberg as jb
from nnlite.models import jaderberg_train as jt


class TorchCharNet(nn.Module):
    """jaderberg.JaderbergNet's layers, named alike, in PyTorch."""

    def __init__(self, net, dropout):
        super().__init__()
        for name, _, _, _ in jb.CONVS:
            conv = getattr(net, name)
            cout, cin, k, _ = conv.weight.shape
            setattr(self, name, nn.Conv2d(cin, cout, k, padding="same"))
        for name in ("fc1", "fc2", "classifier"):
            out_features, in_features = getattr(net, name).weight.shape
            setattr(self, name, nn.Linear(in_features, out_features))
        self.pool = nn.MaxPool2d(2, 2)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.dropout = nn.Dropout(dropout)
        with torch.no_grad():
            for key, value in self.state_dict().items():
                value.copy_(torch.from_numpy(np.array(net.state_dict()[key].numpy())))

    def forward(self, x):
        for name, _, _, _ in jb.CONVS:
            x = torch.relu(getattr(self, name)(x))
            if name in ("conv1", "conv2"):
                x = self.pool(x)
            elif name == "conv4":
                x = self.pool3(x)
        x = torch.flatten(x, 1)
        x = self.dropout(torch.relu(self.fc1(x)))
        x = self.dropout(torch.relu(self.fc2(x)))
        return self.classifier(x).reshape(x.shape[0], jb.MAX_LENGTH, jb.NUM_CHAR_CLASSES)


def torch_loss(logits, texts):
    labels = torch.from_numpy(jb.encode_words(texts))
    return nn.functional.cross_entropy(logits.permute(0, 2, 1), labels)


def torch_optimiser(model, recipe, adam_lr=None):
    group = recipe.optimizer.param_groups[0]
    if adam_lr:  # a diagnostic: does the net learn this data under another optimiser?
        return torch.optim.Adam(model.parameters(), lr=adam_lr), None
    optimiser = torch.optim.SGD(model.parameters(), lr=group["lr"], momentum=group["momentum"],
                                nesterov=group["nesterov"])
    decay = jb.default_config("charnet")["lr_decay"]
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: 1.0 / (1.0 + decay * s))
    return optimiser, scheduler


def make_recipe(args, dropout):
    return jt.training_recipe(seed=args.seed, batch=args.batch, lr=args.lr,
                              val_size=args.val_size, show=0, init=args.init,
                              max_length=args.max_length, augment=not args.clean,
                              layout=args.layout,
                              model_options=dict(dropout=dropout))


def compare_steps(recipe, steps):
    """Takes `steps` optimiser steps of the recipe (its model built with
    dropout 0) and of a PyTorch replica from the same initial weights on the
    same batches; returns [(nnlite loss, torch loss)] per step and, for step
    1, {parameter: (max |grad difference| / max |torch grad|, max |torch grad|)}."""
    net = recipe.model
    replica = TorchCharNet(net, dropout=0.0)
    optimiser, scheduler = torch_optimiser(replica, recipe)
    batches, losses, gradients = iter(recipe.train_loader), [], {}
    for step in range(1, steps + 1):
        images, texts = next(batches)
        net.train()
        recipe.optimizer.zero_grad()
        loss, _ = recipe.task.loss(net, (images, texts))
        loss.backward()
        optimiser.zero_grad()
        t_loss = torch_loss(replica(torch.from_numpy(jt.normalise(images))), texts)
        t_loss.backward()
        if step == 1:
            ours = dict(net.named_parameters())
            for name, param in replica.named_parameters():
                theirs = param.grad.numpy()
                scale = float(np.abs(theirs).max()) + 1e-30
                diff = np.abs(np.asarray(ours[name].grad.numpy()) - theirs).max()
                gradients[name] = (float(diff) / scale, scale)
        losses.append((loss.item(), t_loss.item()))
        recipe.optimizer.step()
        recipe.scheduler.step()
        optimiser.step()
        scheduler.step()
    return losses, gradients


def compare(args):
    losses, gradients = compare_steps(make_recipe(args, dropout=0.0), args.steps)
    for name, (rel, scale) in sorted(gradients.items(), key=lambda kv: -kv[1][0]):
        print(f"  step-1 grad {name:18s} max|diff|/max|grad| = {rel:.2e} (max|grad| {scale:.3e})")
    for step, (ours, theirs) in enumerate(losses, 1):
        print(f"step {step}: nnlite loss {ours:.6f}  torch loss {theirs:.6f}  "
              f"diff {abs(ours - theirs):.2e}", flush=True)


def evaluate(replica, recipe):
    replica.eval()
    predicted, truth = [], []
    with torch.no_grad():
        for images, texts in recipe.val_loader:
            logits = replica(torch.from_numpy(jt.normalise(images)))
            predicted += jb.decode_charnet(nl.tensor(logits.numpy()))
            truth += list(texts)
    replica.train()
    return jt.charnet_metrics(predicted, truth)


def train(args):
    recipe = make_recipe(args, dropout=args.dropout)
    replica = TorchCharNet(recipe.model, dropout=args.dropout)
    if args.zero_classifier:  # a diagnostic: logits start at 0 (loss ln 37)
        with torch.no_grad():
            replica.classifier.weight.zero_()
    optimiser, scheduler = torch_optimiser(replica, recipe, args.adam)
    torch.manual_seed(args.seed)
    batches, start, losses = iter(recipe.train_loader), time.time(), []
    for step in range(1, args.steps + 1):
        images, texts = next(batches)
        optimiser.zero_grad()
        loss = torch_loss(replica(torch.from_numpy(jt.normalise(images))), texts)
        loss.backward()
        optimiser.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(loss.item())
        if step % args.eval_every == 0 or step == args.steps:
            metrics = evaluate(replica, recipe)
            print(f"step {step} ({time.time() - start:.0f} s): train loss (last "
                  f"{args.eval_every}) {np.mean(losses[-args.eval_every:]):.4f}  word acc "
                  f"{metrics['word_accuracy']:.4f}  char acc {metrics['character_accuracy']:.4f}",
                  flush=True)


def checks(args):
    rng = np.random.default_rng(0)
    flat = nl.tensor(rng.standard_normal((4, jb.MAX_LENGTH * jb.NUM_CHAR_CLASSES)),
                     requires_grad=True)
    labels = jb.encode_words(["a", "hello", "0123456789abcdefghijklm", "zz"])
    print("gradcheck of charnet_loss on (4, 851) float64 logits:",
          nl.gradcheck(lambda t: jb.charnet_loss(t, labels), [flat]))
    x = nl.tensor(rng.uniform(1, 2, (64, 512)), requires_grad=True)
    upstream = rng.standard_normal((64, 512))
    y = nl.functional.dropout(x, 0.5, True)
    (y * nl.tensor(upstream)).sum().backward()
    kept = np.asarray(y.numpy()) != 0
    print(f"dropout p=0.5: kept {kept.mean():.4f}, kept values x 2: "
          f"{np.allclose(np.asarray(y.numpy())[kept], 2 * np.asarray(x.numpy())[kept])}, "
          f"backward = mask x 2 x upstream: "
          f"{np.allclose(np.asarray(x.grad.numpy()), kept * 2.0 * upstream)}")
    recipe = make_recipe(args, dropout=0.5)
    recipe.model.eval()
    images, texts = next(iter(recipe.train_loader))
    outputs = dict(recipe.model.trace(nl.tensor(jt.normalise(images))))
    print("std of the initialised net's outputs on one batch (eval mode): " + ", ".join(
        f"{name} {np.asarray(outputs[name].numpy()).std():.3f}"
        for name in ("conv1", "conv3", "conv5", "fc1", "fc2", "classifier")))
    loss = jb.charnet_loss(outputs["classifier"], jb.encode_words(texts)).item()
    print(f"initial loss {loss:.4f} (ln 37 = {np.log(37):.4f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("compare", "train", "checks"))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", default="he")
    parser.add_argument("--max-length", type=int, default=jb.MAX_LENGTH)
    parser.add_argument("--val-size", type=int, default=256)
    parser.add_argument("--clean", action="store_true")
    parser.add_argument("--layout", default="centred", choices=("centred", "crop"))
    parser.add_argument("--dropout", type=float, default=0.5, help="train mode")
    parser.add_argument("--zero-classifier", action="store_true", help="train mode")
    parser.add_argument("--adam", type=float, default=None, help="train mode: Adam at this lr")
    args = parser.parse_args()
    torch.set_num_threads(1)
    nl.set_num_threads(1)
    {"compare": compare, "train": train, "checks": checks}[args.mode](args)


if __name__ == "__main__":
    main()
