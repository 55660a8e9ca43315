"""MatConvNet weights (as NumPy .npz dumps) into nnlite models: CharNet/DictNet.

MatConvNet stores a convolution's filters as (H, W, Cin, Cout) and its fully
connected layers as convolutions whose kernel covers the whole input, so fc1
of CharNet/DictNet is (4, 13, 512, 4096) and fc2 is (1, 1, 4096, 4096).
MatConvNet, like nnlite, computes a correlation, so filters are transposed to
(Cout, Cin, H, W) and never flipped (the seed flipped them only because Theano
convolves). fc1's (H, W, C, out) kernel becomes a Linear over nnlite's NCHW
flatten with SPECS's formula ``W.transpose(1, 0, 2, 3).reshape(H*W*C, out,
order="F").T``.

An npz holds, per weight layer, ``<layer>f`` (filters) and ``<layer>b``
(biases; any shape with Cout elements, as MATLAB saves (Cout, 1) or (1, Cout)),
MatConvNet's DagNN parameter names. The layer names default to CharNet's and
DictNet's: conv1..conv5, fc1, fc2, fc3 (the classifier).
"""
import numpy as np

from nnlite import device as _device

__all__ = ["MatConvNetImportError", "JADERBERG_LAYERS", "load_matconvnet_npz",
           "save_matconvnet_npz"]

# (MatConvNet layer name, the model's attribute holding that layer)
JADERBERG_LAYERS = (("conv1", "conv1"), ("conv2", "conv2"), ("conv3", "conv3"),
                    ("conv4", "conv4"), ("conv5", "conv5"), ("fc1", "fc1"), ("fc2", "fc2"),
                    ("fc3", "classifier"))


class MatConvNetImportError(ValueError):
    """A MatConvNet dump that does not match the model it is loaded into."""


def _layers(model, layers, op):
    modules = []
    for mcn_name, attribute in layers:
        module = getattr(model, attribute, None)
        if module is None or not hasattr(module, "weight"):
            raise TypeError(f"{op}: {type(model).__name__} has no weight layer "
                            f"{attribute!r} for MatConvNet layer {mcn_name!r}; pass layers=[("
                            f"matconvnet_name, attribute), ...] for other models")
        modules.append((mcn_name, module))
    return modules


def _expected_filters(module, first_linear, previous_channels):
    """The MatConvNet filter shape of `module`, as the dump must hold it."""
    weight_shape = tuple(module.weight.shape)
    if len(weight_shape) == 4:  # Conv2d (Cout, Cin, H, W)
        cout, cin, kh, kw = weight_shape
        return (kh, kw, cin, cout)
    out_features, in_features = weight_shape
    if first_linear and previous_channels and in_features % previous_channels == 0:
        return None  # (H, W, C, out) with H*W = in/C: checked against the dump below
    return (1, 1, in_features, out_features)


def _convert(array, module, mcn_name, key, path, first_linear, previous_channels):
    """MatConvNet filters -> the module's weight layout, or an error naming the problem."""
    weight_shape = tuple(module.weight.shape)
    expected = _expected_filters(module, first_linear, previous_channels)
    if len(weight_shape) == 4:
        if array.shape != expected:
            raise MatConvNetImportError(
                f"load_matconvnet_npz: {path}: array {key!r} has shape {array.shape}; "
                f"expected (H, W, Cin, Cout) = {expected} for {mcn_name}")
        return array.transpose(3, 2, 0, 1)
    out_features, in_features = weight_shape
    if expected is None:  # the flatten layer: (H, W, C, out) -> NCHW-flatten Linear
        spatial = in_features // previous_channels
        ok = (array.ndim == 4 and array.shape[2] == previous_channels
              and array.shape[0] * array.shape[1] == spatial
              and array.shape[3] == out_features)
        if not ok:
            raise MatConvNetImportError(
                f"load_matconvnet_npz: {path}: array {key!r} has shape {array.shape}; "
                f"expected (H, W, C, out) with C = {previous_channels}, H * W = {spatial} "
                f"and out = {out_features} for {mcn_name}")
        return array.transpose(1, 0, 2, 3).reshape(in_features, out_features, order="F").T
    if array.shape not in (expected, expected[2:]):
        raise MatConvNetImportError(
            f"load_matconvnet_npz: {path}: array {key!r} has shape {array.shape}; expected "
            f"(1, 1, in, out) = {expected} or (in, out) = {expected[2:]} for {mcn_name}")
    return array.reshape(in_features, out_features).T


def load_matconvnet_npz(model, path, layers=JADERBERG_LAYERS, filters_key="{}f",
                        biases_key="{}b"):
    """Loads a MatConvNet .npz dump into `model` in place and returns the model.

    Every array is checked before any parameter changes, so a bad file leaves
    the model as it was. Arrays the layers do not name are ignored."""
    op = "load_matconvnet_npz"
    modules = _layers(model, layers, op)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise MatConvNetImportError(f"{op}: cannot read {path} as an .npz archive: "
                                    f"{error}") from error
    with archive:
        available = sorted(archive.files)
        converted = []
        previous_channels, seen_linear = None, False
        for mcn_name, module in modules:
            is_linear = module.weight.ndim == 2
            arrays = []
            for key, expected_size in ((filters_key.format(mcn_name), None),
                                       (biases_key.format(mcn_name),
                                        module.weight.shape[0])):
                if key not in archive.files:
                    raise MatConvNetImportError(f"{op}: {path} has no array {key!r} for layer "
                                                f"{mcn_name}; it holds {available}")
                arrays.append(np.asarray(archive[key]))
            filters, biases = arrays
            weight = _convert(filters, module, mcn_name, filters_key.format(mcn_name), path,
                              is_linear and not seen_linear, previous_channels)
            if module.bias is None:
                raise MatConvNetImportError(f"{op}: layer {mcn_name} of the model has no bias "
                                            f"but {path} holds {biases_key.format(mcn_name)!r}")
            if biases.size != module.bias.shape[0]:
                raise MatConvNetImportError(
                    f"{op}: {path}: array {biases_key.format(mcn_name)!r} has shape "
                    f"{biases.shape}; expected {module.bias.shape[0]} biases (shape "
                    f"{tuple(module.bias.shape)}) for {mcn_name}")
            converted.append((module, weight, biases.reshape(-1)))
            if is_linear:
                seen_linear = True
            else:
                previous_channels = module.weight.shape[0]
    for module, weight, biases in converted:
        for param, value in ((module.weight, weight), (module.bias, biases)):
            xp = _device.xp(param.device)
            param.data[...] = xp.asarray(np.ascontiguousarray(value), dtype=param.dtype)
    return model


def save_matconvnet_npz(model, path, layers=JADERBERG_LAYERS, spatial_shapes=None,
                        filters_key="{}f", biases_key="{}b"):
    """Writes `model`'s weights in the MatConvNet layout load_matconvnet_npz reads
    (the inverse transposes; biases as MATLAB's (Cout, 1) columns).

    spatial_shapes maps a flatten layer's MatConvNet name to its input (H, W);
    by default CharNet/DictNet's fc1 sees 4 x 13."""
    spatial_shapes = {"fc1": (4, 13)} if spatial_shapes is None else dict(spatial_shapes)
    arrays = {}
    previous_channels, seen_linear = None, False
    for mcn_name, module in _layers(model, layers, "save_matconvnet_npz"):
        weight = np.asarray(module.weight.numpy())
        if weight.ndim == 4:
            filters = weight.transpose(2, 3, 1, 0)
            previous_channels = weight.shape[0]
        elif not seen_linear and mcn_name in spatial_shapes:
            height, width = spatial_shapes[mcn_name]
            out_features = weight.shape[0]
            filters = weight.T.reshape(width, height, previous_channels, out_features,
                                       order="F").transpose(1, 0, 2, 3)
            seen_linear = True
        else:
            filters = weight.T[None, None]
            seen_linear = True
        arrays[filters_key.format(mcn_name)] = np.ascontiguousarray(filters)
        arrays[biases_key.format(mcn_name)] = np.asarray(module.bias.numpy()).reshape(-1, 1)
    np.savez(path, **arrays)
    return path
