"""NAC/NALU experiments (SPECS section 4, seed 002; Trask et al. 2018).

* The static arithmetic task: x in R^100, a and b sums of two fixed slices,
  targets a+b, a-b, a*b, a/b, a^2, sqrt(a); models MLP (ReLU6 or linear), NAC
  and NALU, 100 -> 2 -> 1 (two layers, hidden size 2, as the paper's
  reference implementations); score = RMSE scaled so that a randomly
  initialised model is 100 and a perfect one 0.
* The identity-failure MLP 1-8-8-8-1 with a choice of nonlinearity.
* The seed tutorial's single NALU 2 -> 1 (Adam 0.01, integer pairs).

The layers themselves are nnlite.nn.NAC and nnlite.nn.NALU.
"""
import numpy as np

from nnlite import functional as F
from nnlite import nn
from nnlite.data.arithmetic import OPERATIONS  # the static task's targets, one table

STATIC_MODELS = ("mlp_relu6", "mlp_linear", "nac", "nalu")
IDENTITY_ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "sigmoid": nn.Sigmoid,
                        "tanh": nn.Tanh, "linear": nn.Identity}

# Where the SPECS leave the static task's numbers open, these follow the
# paper's reference setting: inputs uniform in [0, 1) for interpolation and
# [0, 5) for extrapolation, and two overlapping 10-wide slices.
INTERPOLATION_RANGE = (0.0, 1.0)
EXTRAPOLATION_RANGE = (0.0, 5.0)
SLICE_A = slice(0, 10)
SLICE_B = slice(5, 15)


def nac(in_features=100, hidden=2, out_features=1):
    """Two stacked NACs (the paper's static-task NAC model)."""
    return nn.Sequential(nn.NAC(in_features, hidden), nn.NAC(hidden, out_features))


def nalu(in_features=100, hidden=2, out_features=1, shared_weights=True, eps=1e-7):
    """Two stacked NALUs (the paper's static-task NALU model)."""
    return nn.Sequential(
        nn.NALU(in_features, hidden, eps=eps, shared_weights=shared_weights),
        nn.NALU(hidden, out_features, eps=eps, shared_weights=shared_weights))


def mlp(in_features=100, hidden=2, out_features=1, activation="relu6"):
    """The comparison MLP: Linear -> activation -> Linear; activation "relu6"
    or "linear" (no nonlinearity) for the static task."""
    if activation not in IDENTITY_ACTIVATIONS:
        raise ValueError(f"nalu.mlp: activation must be one of {sorted(IDENTITY_ACTIVATIONS)}, "
                         f"got {activation!r}")
    return nn.Sequential(nn.Linear(in_features, hidden), IDENTITY_ACTIVATIONS[activation](),
                         nn.Linear(hidden, out_features))


def static_task_model(kind, in_features=100, hidden=2):
    """One of the static task's four models by name (STATIC_MODELS)."""
    builders = {"mlp_relu6": lambda: mlp(in_features, hidden, activation="relu6"),
                "mlp_linear": lambda: mlp(in_features, hidden, activation="linear"),
                "nac": lambda: nac(in_features, hidden), "nalu": lambda: nalu(in_features, hidden)}
    if kind not in builders:
        raise ValueError(f"nalu.static_task_model: kind must be one of {STATIC_MODELS}, "
                         f"got {kind!r}")
    return builders[kind]()


def identity_mlp(activation="relu6", width=8, depth=3):
    """The identity-failure MLP 1-8-8-8-1: `depth` hidden layers of `width`, each
    followed by `activation`, then a linear output."""
    if activation not in IDENTITY_ACTIVATIONS:
        raise ValueError(f"nalu.identity_mlp: activation must be one of "
                         f"{sorted(IDENTITY_ACTIVATIONS)}, got {activation!r}")
    layers, size = [], 1
    for _ in range(depth):
        layers += [nn.Linear(size, width), IDENTITY_ACTIVATIONS[activation]()]
        size = width
    layers.append(nn.Linear(size, 1))
    return nn.Sequential(*layers)


def tutorial_nalu():
    """The seed tutorial's model: one NALU 2 -> 1."""
    return nn.NALU(2, 1)


build = nalu
MODELS = {"nalu": nalu, "nac": nac, "nalu_mlp": mlp, "identity_mlp": identity_mlp,
          "nalu_tutorial": tutorial_nalu}
INPUT_SHAPES = {"nalu": (100,), "nac": (100,), "nalu_mlp": (100,), "identity_mlp": (1,),
                "nalu_tutorial": (2,)}


def static_task_data(operation, count, rng, value_range=INTERPOLATION_RANGE, in_features=100):
    """(x (count, in_features), y (count, 1)) float32 for one operation."""
    if operation not in OPERATIONS:
        raise ValueError(f"nalu.static_task_data: operation must be one of "
                         f"{sorted(OPERATIONS)}, got {operation!r}")
    x = rng.uniform(value_range[0], value_range[1], size=(count, in_features))
    a = x[:, SLICE_A].sum(axis=1)
    b = x[:, SLICE_B].sum(axis=1)
    y = OPERATIONS[operation](a, b)[:, None]
    return x.astype(np.float32), y.astype(np.float32)


def identity_data(count, rng, value_range=(-5.0, 5.0)):
    """(x, y = x), each (count, 1) float32, for the identity-failure experiment."""
    x = rng.uniform(value_range[0], value_range[1], size=(count, 1)).astype(np.float32)
    return x, x.copy()


def tutorial_data(count, rng, high=100):
    """Integer pairs in [1, high) and their sums, the seed tutorial's data
    (train high=100, extrapolation high=1000)."""
    x = rng.integers(1, high, size=(count, 2)).astype(np.float32)
    return x, x.sum(axis=1, keepdims=True)


def rmse(prediction, target):
    prediction = np.asarray(prediction, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    return float(np.sqrt(np.mean((prediction - target) ** 2)))


def scaled_error(prediction, target, random_model_prediction):
    """The paper's score: 100 * RMSE(model) / RMSE(randomly initialised model);
    0 is perfect, 100 no better than untrained."""
    baseline = rmse(random_model_prediction, target)
    if baseline == 0:
        raise ValueError("nalu.scaled_error: the random model's RMSE is 0, so the scale is "
                         "undefined")
    return 100.0 * rmse(prediction, target) / baseline


def loss(prediction, target):
    """MSE, the loss of every NALU experiment."""
    return F.mse_loss(prediction, target)


def metrics(prediction, target, random_model_prediction=None):
    result = {"rmse": rmse(prediction, target),
              "mean_absolute_error": float(np.mean(np.abs(np.asarray(prediction, np.float64)
                                                          - np.asarray(target, np.float64))))}
    if random_model_prediction is not None:
        result["scaled_error"] = scaled_error(prediction, target, random_model_prediction)
    return result


def default_config():
    """The seed tutorial's setting plus the paper's experiments (SPECS section 4)."""
    return {
        "model": "nalu_tutorial",
        "input_shape": INPUT_SHAPES["nalu_tutorial"],
        "optimizer": "adam",
        "lr": 0.01,
        "loss": "mse",
        "train_range": (1, 100),
        "test_range": (1, 1000),
        "eps": 1e-7,
        "static_task": {"operations": sorted(OPERATIONS), "models": STATIC_MODELS,
                        "interpolation_range": INTERPOLATION_RANGE,
                        "extrapolation_range": EXTRAPOLATION_RANGE},
        "identity_task": {"activations": sorted(IDENTITY_ACTIVATIONS),
                          "train_range": (-5, 5), "test_range": (-20, 20)},
    }


# ----------------------------------------------------------------- training --
# `nnlite train nac|nalu|nalu_mlp|identity_mlp|nalu_tutorial`: MSE, Adam 0.01
# (the seed's setting); metric = the paper's scaled error (random model = 100,
# perfect = 0) on a fixed validation set drawn from another seed, with the
# extrapolation range scored beside it.

# Registry name -> (static-task kind or experiment, default operation)
RECIPE_MODELS = {"nalu": ("nalu", "mul"), "nac": ("nac", "add"),
                 "nalu_mlp": ("mlp_relu6", "add"), "identity_mlp": ("identity", None),
                 "nalu_tutorial": ("tutorial", "add")}
TRAIN_SIZE, VAL_SIZE = 10_000, 1_000
VAL_SEED_OFFSET, BASELINE_SEED_OFFSET = 10_000, 20_000
RANDOM_MODELS = 8  # random initialisations averaged into the "100" of the scale


def _parse_operation(model, data, default):
    """--data for the NALU models: 'synth' (the model's default operation),
    'synth:OP' or OP (add, sub, mul, div, square, sqrt or a+b, a-b, ...)."""
    from nnlite.data.arithmetic import ALIASES
    spec = data[len("synth:"):] if data.startswith("synth:") else data
    if spec == "synth":
        return default
    name = ALIASES.get(spec, spec)
    if name not in OPERATIONS:
        raise ValueError(f"the {model} experiments use synthetic data only: --data must be "
                         f"'synth', 'synth:OP' or OP with OP one of {sorted(OPERATIONS)} or "
                         f"{sorted(ALIASES)}; got {data!r}")
    if default is None or (model == "nalu_tutorial" and name != "add"):
        raise ValueError(f"--data {data!r}: {model} learns "
                         f"{'the identity' if default is None else 'integer addition'} only; "
                         f"use --data synth")
    return name


def experiment_data(kind, operation, seed):
    """{"train": (x, y), "val": (x, y), "extrapolation": (x, y)} float32 arrays:
    training from `seed`, the fixed validation and extrapolation sets from
    seed + VAL_SEED_OFFSET (never seen in training)."""
    from nnlite.data import arithmetic_task, identity_task, integer_addition_task
    val_seed = seed + VAL_SEED_OFFSET
    if kind == "identity":
        low, high = default_config()["identity_task"]["test_range"]
        return {"train": identity_task(TRAIN_SIZE, seed),
                "val": identity_task(VAL_SIZE, val_seed),
                "extrapolation": identity_task(VAL_SIZE, val_seed + 1, (low, high))}
    if kind == "tutorial":
        return {"train": integer_addition_task(TRAIN_SIZE, seed, high=100),
                "val": integer_addition_task(VAL_SIZE, val_seed, high=100),
                "extrapolation": integer_addition_task(VAL_SIZE, val_seed + 1, high=1000)}
    return {"train": arithmetic_task(operation, TRAIN_SIZE, seed),
            "val": arithmetic_task(operation, VAL_SIZE, val_seed),
            "extrapolation": arithmetic_task(operation, VAL_SIZE, val_seed + 1,
                                             extrapolation=True)}


def experiment_model(kind, activation="relu6"):
    """A fresh (randomly initialised) model of an experiment kind: a STATIC_MODELS
    name, "nalu_separate", "identity" (identity_mlp with `activation`) or "tutorial"."""
    if kind == "identity":
        return identity_mlp(activation)
    if kind == "nalu_separate":  # the log path with its own NAC weight
        return nalu(shared_weights=False)
    if kind == "tutorial":
        return tutorial_nalu()
    return static_task_model(kind)


def predict(model, x, batch=1000):
    """The model's outputs for the array x, float64, without building a graph."""
    import nnlite as nl
    from nnlite.training.task import model_device
    device = model_device(model)
    with nl.no_grad():
        parts = [model(nl.tensor(x[i:i + batch]).to(device)).numpy()
                 for i in range(0, len(x), batch)]
    return np.concatenate(parts).astype(np.float64)


def random_model_rmse(kind, sets, seed, activation="relu6", count=RANDOM_MODELS):
    """{set name: mean RMSE of `count` randomly initialised models} for the
    sets given; the "100" of the scaled error. Leaves the global RNG reseeded."""
    import nnlite as nl
    totals = {name: 0.0 for name in sets}
    for k in range(count):
        nl.manual_seed(seed + BASELINE_SEED_OFFSET + k)
        model = experiment_model(kind, activation)
        for name, (x, y) in sets.items():
            totals[name] += rmse(predict(model, x), y)
    result = {name: total / count for name, total in totals.items()}
    bad = {name: value for name, value in result.items() if not np.isfinite(value) or value == 0}
    if bad:
        raise ValueError(f"nalu.random_model_rmse: the random {kind} model's RMSE is {bad}; "
                         f"the scale is undefined")
    return result


class ArithmeticTask:
    """Batches (x, y); MSE loss; metric "scaled_error" = 100 * RMSE / RMSE of a
    random model on the validation loader (lower is better), plus the same on
    the fixed extrapolation set."""
    metric_name = "scaled_error"
    higher_is_better = False

    def __init__(self, baseline_rmse, extrapolation=None):
        self.baseline_rmse = dict(baseline_rmse)
        self.extrapolation = extrapolation

    def loss(self, model, batch):
        from nnlite.training.task import model_device, move_batch
        x, y = move_batch(batch, model_device(model))
        return loss(model(x), y), {}

    def evaluate(self, model, loader):
        predictions, targets = [], []
        for x, y in loader:
            predictions.append(predict(model, np.asarray(x)))
            targets.append(np.asarray(y, np.float64))
        if not predictions:
            raise ValueError("ArithmeticTask.evaluate: the loader yielded no samples")
        error = rmse(np.concatenate(predictions), np.concatenate(targets))
        result = {"scaled_error": 100.0 * error / self.baseline_rmse["val"], "rmse": error}
        if self.extrapolation is not None:
            x, y = self.extrapolation
            error = rmse(predict(model, x), y)
            result["extrapolation_scaled_error"] = (100.0 * error
                                                    / self.baseline_rmse["extrapolation"])
            result["extrapolation_rmse"] = error
        return result

    def predict(self, model, batch):
        return predict(model, np.asarray(batch[0] if isinstance(batch, (tuple, list))
                                         else batch))


def training_recipe(data="synth", batch=None, seed=0, device="cpu", model="nalu",
                    activation="relu6"):
    """The Recipe of one NALU-family registry entry (`model`) on synthetic data."""
    import nnlite as nl
    from nnlite import optim
    from nnlite.data import ArrayDataset, DataLoader
    from nnlite.training import Recipe
    if model not in RECIPE_MODELS:
        raise ValueError(f"nalu.training_recipe: model must be one of {sorted(RECIPE_MODELS)}, "
                         f"got {model!r}")
    kind, default_operation = RECIPE_MODELS[model]
    operation = _parse_operation(model, data, default_operation)
    sets = experiment_data(kind, operation, seed)
    baseline = random_model_rmse(kind, {"val": sets["val"],
                                        "extrapolation": sets["extrapolation"]}, seed, activation)
    nl.manual_seed(seed)
    network = experiment_model(kind, activation).to(device)
    optimizer = optim.Adam(network.parameters(), lr=default_config()["lr"])
    batch = batch or 64
    train = DataLoader(ArrayDataset(*sets["train"]), batch, shuffle=True, seed=seed)
    val = DataLoader(ArrayDataset(*sets["val"]), 500, prefetch=0)
    return Recipe(network, optimizer, None, ArithmeticTask(baseline, sets["extrapolation"]),
                  train, val, steps=2000, eval_every=250, log_every=50)
