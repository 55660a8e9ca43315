"""Argument checks shared by both kernel backends, so that a bad call fails the
same way, with the same message, on CPU and GPU.

Messages name the kernel, what it was given and what it expected.
"""
FLOAT_DTYPES = ("float32", "float64")
_SUFFIX = {"float32": "f32", "float64": "f64"}
# The .cuh steps index within a row, and the CUDA grid counts rows, with int.
MAX_EXTENT = 2**31 - 1


def float_arrays(op, xp, dims, **arrays):
    """Validate same-shape, same-dtype float arrays of backend `xp` and return
    them C-contiguous, in keyword order.

    `dims` names the axes, e.g. ("rows", "cols"); it fixes ndim and words the
    messages. The first keyword is the reference for shape and dtype.
    """
    checked = []
    ref_name = ref = None
    for name, a in arrays.items():
        if not isinstance(a, xp.ndarray):
            kind = type(a)
            raise TypeError(f"{op}: {name} must be a {xp.__name__}.ndarray (all inputs on one "
                            f"device); got {kind.__module__}.{kind.__qualname__}")
        if a.dtype.name not in FLOAT_DTYPES:
            raise TypeError(f"{op}: {name} has dtype {a.dtype}; expected float32 or float64")
        if a.ndim != len(dims):
            raise ValueError(f"{op}: {name} must be {len(dims)}-D ({', '.join(dims)}); "
                             f"got shape {tuple(a.shape)}")
        if ref is None:
            ref_name, ref = name, a
            if max(a.shape, default=0) > MAX_EXTENT:
                raise ValueError(f"{op}: {name} has shape {tuple(a.shape)}; every extent must "
                                 f"be at most {MAX_EXTENT}")
        elif a.shape != ref.shape:
            raise ValueError(f"{op}: {name} has shape {tuple(a.shape)}; expected the shape of "
                             f"{ref_name}, {tuple(ref.shape)}")
        elif a.dtype != ref.dtype:
            raise TypeError(f"{op}: {name} has dtype {a.dtype}; expected the dtype of "
                            f"{ref_name}, {ref.dtype}")
        checked.append(xp.ascontiguousarray(a))
    return checked


def dtype_suffix(dtype):
    """float32 -> 'f32', float64 -> 'f64': the suffix of the extern "C" entry points."""
    return _SUFFIX[dtype.name]


def ctc_arrays(op, xp, log_probs, targets, input_lengths, target_lengths):
    """Validate the CTC kernel inputs of backend `xp` and return them C-contiguous:
    log_probs (T, N, C) float, targets (N, L_max) int32 (padded), input_lengths and
    target_lengths (N,) int32. Value checks (lengths, labels) are the caller's
    (nnlite.functional.ctc), which words them for the user."""
    (log_probs,) = float_arrays(op, xp, ("T", "N", "C"), log_probs=log_probs)
    batch = log_probs.shape[1]
    expected = {"targets": (batch, None), "input_lengths": (batch,),
                "target_lengths": (batch,)}
    checked = []
    for name, a in (("targets", targets), ("input_lengths", input_lengths),
                    ("target_lengths", target_lengths)):
        if not isinstance(a, xp.ndarray) or a.dtype.name != "int32":
            kind = type(a)
            raise TypeError(f"{op}: {name} must be a {xp.__name__}.ndarray of int32 on the "
                            f"device of log_probs; got {kind.__module__}.{kind.__qualname__} "
                            f"of dtype {getattr(a, 'dtype', None)}")
        want = expected[name]
        if a.ndim != len(want) or a.shape[0] != want[0]:
            described = "(N, L_max)" if name == "targets" else "(N,)"
            raise ValueError(f"{op}: {name} has shape {tuple(a.shape)}; expected {described} "
                             f"with N = {batch} from log_probs {tuple(log_probs.shape)}")
        checked.append(xp.ascontiguousarray(a))
    if log_probs.size and log_probs.shape[0] * log_probs.shape[1] * log_probs.shape[2] > MAX_EXTENT:
        raise ValueError(f"{op}: log_probs has shape {tuple(log_probs.shape)}; at most "
                         f"{MAX_EXTENT} elements are supported")
    return [log_probs] + checked
