"""The pieces of a training run's state that live outside the model and the
optimiser, captured as JSON-able values so a checkpoint can hold them:
random generators, the lr scheduler, and an interrupt-safe section."""
import contextlib
import copy
import json
import random as _python_random
import signal
import threading

import numpy as np

from nnlite import random as _nl_random
from nnlite.io.atomic import atomic_path

_ITEMS = "__items__"  # a dict whose keys are not all strings (MultiStepLR's Counter)


# ----------------------------------------------------------- random state --

def capture_rng():
    """Every CPU generator a training step may draw from: nnlite's (dropout),
    NumPy's global one and Python's `random` (data augmentation)."""
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"] = {"key": numpy_state["state"]["key"].tolist(),
                            "pos": int(numpy_state["state"]["pos"])}
    return {"nnlite": _nl_random.get_rng_state(), "numpy": numpy_state,
            "python": _listify(_python_random.getstate())}


def restore_rng(state):
    _nl_random.set_rng_state(state["nnlite"])
    np.random.set_state(_numpy_state(state["numpy"]))
    _python_random.setstate(_tuplify(state["python"]))


def check_rng(state):
    """Raise if ``restore_rng(state)`` would fail, without touching the
    process's generators: the state is tried on throwaway ones."""
    bit_state = state["nnlite"]["bit_generator"]
    kind = getattr(np.random, bit_state["bit_generator"], None)
    if not (isinstance(kind, type) and issubclass(kind, np.random.BitGenerator)):
        raise ValueError(f"unknown bit generator {bit_state['bit_generator']!r}")
    kind().state = bit_state
    np.random.RandomState().set_state(_numpy_state(state["numpy"]))
    _python_random.Random().setstate(_tuplify(state["python"]))


def _numpy_state(saved):
    numpy_state = dict(saved)
    numpy_state["state"] = {"key": np.asarray(numpy_state["state"]["key"], dtype=np.uint32),
                            "pos": numpy_state["state"]["pos"]}
    return numpy_state


def seed_everything(seed):
    """Seed nnlite's, NumPy's global and Python's generators."""
    _nl_random.manual_seed(seed)
    np.random.seed(seed)
    _python_random.seed(seed)


def _listify(value):
    return [_listify(v) for v in value] if isinstance(value, (tuple, list)) else value


def _tuplify(value):
    return tuple(_tuplify(v) for v in value) if isinstance(value, (tuple, list)) else value


# -------------------------------------------------------- scheduler state --

def encode_state(value):
    """`value` as JSON-able data that ``decode_state`` turns back into an equal
    value (dicts with non-string keys survive); a TypeError when impossible."""
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and type(value) is dict:
            return {k: encode_state(v) for k, v in value.items()}
        return {_ITEMS: [[encode_state(k), encode_state(v)] for k, v in value.items()],
                "type": type(value).__name__}
    if isinstance(value, (list, tuple)):
        return [encode_state(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"a {type(value).__name__} ({value!r:.80}) is not JSON-able")


def decode_state(value, template=None):
    """Inverse of encode_state. `template` (the live object's current state)
    gives lists back their tuple type and Counters their class."""
    if isinstance(value, dict):
        if _ITEMS in value:
            items = dict((_hashable(decode_state(k)), decode_state(v)) for k, v in value[_ITEMS])
            if not isinstance(template, dict) or type(template) is dict:
                return items
            # The template's own class (a Counter, a defaultdict with its
            # factory), filled as a mapping: Counter(pairs) would count the pairs.
            restored = copy.copy(template)
            restored.clear()
            dict.update(restored, items)
            return restored
        return {k: decode_state(v, template.get(k) if isinstance(template, dict) else None)
                for k, v in value.items()}
    if isinstance(value, list):
        decoded = [decode_state(v) for v in value]
        return tuple(decoded) if isinstance(template, tuple) else decoded
    return value


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def scheduler_state(scheduler):
    """The scheduler's state_dict as JSON-able data, or None when it holds
    something that cannot be saved (the run then cannot be resumed exactly)."""
    if scheduler is None or not hasattr(scheduler, "state_dict"):
        return None
    try:
        return encode_state(scheduler.state_dict())
    except TypeError:
        return None


def restore_scheduler(scheduler, encoded):
    scheduler.load_state_dict(decode_state(encoded, scheduler.state_dict()))


def check_scheduler_state(scheduler, encoded):
    """Raise ValueError if `encoded` (from scheduler_state) is not a state of a
    scheduler like `scheduler`: other keys (another class), or values of
    another kind or length (another number of parameter groups). The state is
    then tried on a shallow copy, so `scheduler` itself is not changed."""
    live = scheduler.state_dict()
    saved = decode_state(encoded, live)
    if not isinstance(saved, dict) or set(saved) != set(live):
        keys = sorted(saved) if isinstance(saved, dict) else type(saved).__name__
        raise ValueError(f"the saved {type(scheduler).__name__} state has keys {keys}, "
                         f"this scheduler has {sorted(live)}")
    for key in live:
        _check_same_kind(key, live[key], saved[key])
    copy.copy(scheduler).load_state_dict(saved)


def _check_same_kind(key, live, saved):
    if live is None or saved is None:
        return  # e.g. a best value not set yet
    numbers = (int, float)
    same = (isinstance(live, bool) == isinstance(saved, bool)
            and (isinstance(live, numbers) == isinstance(saved, numbers))
            and (isinstance(live, str) == isinstance(saved, str))
            and (isinstance(live, dict) == isinstance(saved, dict))
            and (isinstance(live, (list, tuple)) == isinstance(saved, (list, tuple))))
    if same and isinstance(live, (list, tuple)) and len(live) != len(saved):
        same = False
    if not same:
        raise ValueError(f"the saved scheduler state {key!r} is {saved!r:.80}, where this "
                         f"scheduler has {live!r:.80}")


# ------------------------------------------------------ interrupt handling --

# Ctrl-C, and the stop that `kill` and job schedulers (SLURM, Kubernetes) send.
INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def handle_signals(handler, signums=INTERRUPT_SIGNALS):
    """`handler` takes `signums` while the block runs; the previous handlers
    come back afterwards. Only the main thread can take signals, so elsewhere
    the block runs as is. A SIGTERM the process ignores stays ignored (someone
    chose that); SIGINT is taken even then, since a shell's background job
    starts with it ignored."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in signums:
            if signum == signal.SIGTERM and signal.getsignal(signum) is signal.SIG_IGN:
                continue
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, handler_before in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler_before is None else handler_before)


@contextlib.contextmanager
def deferred_interrupt():
    """Hold a Ctrl-C (SIGINT) or a SIGTERM until the block ends, so an
    optimiser step is never left half applied; a KeyboardInterrupt is raised
    afterwards."""
    received = []
    with handle_signals(lambda signum, frame: received.append(signum)):
        yield
    if received:
        raise KeyboardInterrupt


@contextlib.contextmanager
def terminate_as_interrupt():
    """While the block runs, a SIGTERM raises KeyboardInterrupt as Ctrl-C
    does, so a run stopped by `kill` or a job scheduler saves its state like
    one stopped by Ctrl-C."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    with handle_signals(interrupt, (signal.SIGTERM,)):
        yield


# ------------------------------------------------------------ file writing --

def write_json_atomic(path, data):
    """Write `data` as JSON to `path` through a temporary file and os.replace,
    so a reader never sees a half-written file."""
    with atomic_path(path) as temporary:
        with open(temporary, "w") as f:
            json.dump(data, f, indent=1, allow_nan=True)
            f.write("\n")
