"""MatConvNet .npz import (SPECS section 1): the layout is checked against
MatConvNet's own arithmetic written out with einsum (not against the writer),
a CharNet round trip, and errors that name the file, the array and the shape."""
import numpy as np
import pytest

import nnlite as nl
import nnlite.functional as F
from nnlite import nn
from nnlite.io import load_matconvnet_npz, save_matconvnet_npz
from nnlite.io.matconvnet import MatConvNetImportError
from nnlite.models import jaderberg


class TinyJaderberg(nn.Module):
    """CharNet's layer names and structure at toy width: conv1..conv5, a flatten
    fc1 over a (4, 2, 3) feature map, fc2 and the classifier."""

    def __init__(self):
        super().__init__()
        channels = (1, 2, 3, 3, 4, 4)
        for index in range(5):
            setattr(self, f"conv{index + 1}",
                    nn.Conv2d(channels[index], channels[index + 1], (3, 2) if index else 3,
                              padding="same", dtype=np.float64))
        self.fc1 = nn.Linear(4 * 2 * 3, 6, dtype=np.float64)
        self.fc2 = nn.Linear(6, 5, dtype=np.float64)
        self.classifier = nn.Linear(5, 7, dtype=np.float64)

    def features(self, x):
        for index in range(5):
            x = getattr(self, f"conv{index + 1}")(x)
        return x

    def forward(self, x):
        return self.classifier(self.fc2(self.fc1(F.flatten(self.features(x), 1))))


def random_dump(rng, model, fc1_spatial=(2, 3)):
    """MatConvNet-layout arrays for `model`: filters (H, W, Cin, Cout), biases (Cout, 1)."""
    arrays = {}
    for index in range(5):
        cout, cin, kh, kw = getattr(model, f"conv{index + 1}").weight.shape
        arrays[f"conv{index + 1}f"] = rng.standard_normal((kh, kw, cin, cout))
        arrays[f"conv{index + 1}b"] = rng.standard_normal((cout, 1))
    arrays["fc1f"] = rng.standard_normal(fc1_spatial + (4, 6))
    arrays["fc1b"] = rng.standard_normal((1, 6))
    arrays["fc2f"] = rng.standard_normal((1, 1, 6, 5))
    arrays["fc2b"] = rng.standard_normal(5)
    arrays["fc3f"] = rng.standard_normal((5, 7))  # a squeezed (in, out) fc is accepted too
    arrays["fc3b"] = rng.standard_normal((7, 1))
    return arrays


def matconvnet_conv(x_hwc, filters, biases):
    """MatConvNet's vl_nnconv (a correlation, no flip) with "same" padding,
    on one H x W x C image, as loops over the filter taps."""
    kh, kw = filters.shape[:2]
    top, left = (kh - 1) // 2, (kw - 1) // 2
    padded = np.pad(x_hwc, ((top, kh - 1 - top), (left, kw - 1 - left), (0, 0)))
    height, width = x_hwc.shape[:2]
    out = np.zeros((height, width, filters.shape[3])) + biases.reshape(-1)
    for u in range(kh):
        for v in range(kw):
            out += np.einsum("hwc,co->hwo", padded[u:u + height, v:v + width], filters[u, v])
    return out


def test_import_matches_matconvnet_arithmetic(tmp_path):
    rng = np.random.default_rng(0)
    model = TinyJaderberg()
    arrays = random_dump(rng, model)
    path = tmp_path / "tiny.npz"
    np.savez(path, **arrays)
    assert load_matconvnet_npz(model, path) is model
    image = rng.standard_normal((4, 6, 1))  # H x W x C, MatConvNet's layout
    features = image
    for index in range(5):
        features = matconvnet_conv(features, arrays[f"conv{index + 1}f"],
                                   arrays[f"conv{index + 1}b"])
    assert features.shape == (4, 6, 4)
    # fc1 is a convolution whose 2x3 kernel covers a 2x3 map; here the map is pooled
    # away by hand so fc1 sees exactly its kernel's extent
    fc1_input = features[:2, :3]
    fc1 = np.einsum("hwc,hwco->o", fc1_input, arrays["fc1f"]) + arrays["fc1b"].reshape(-1)
    fc2 = fc1 @ arrays["fc2f"][0, 0] + arrays["fc2b"]
    expected = fc2 @ arrays["fc3f"] + arrays["fc3b"].reshape(-1)

    x = nl.tensor(image.transpose(2, 0, 1)[None])
    got_features = model.features(x).numpy()[0]
    np.testing.assert_allclose(got_features, features.transpose(2, 0, 1), rtol=1e-10,
                               atol=1e-10)
    crop = nl.tensor(got_features[None, :, :2, :3])
    got = model.classifier(model.fc2(model.fc1(F.flatten(crop, 1)))).numpy()[0]
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_writer_inverts_the_loader(tmp_path):
    rng = np.random.default_rng(1)
    source, target = TinyJaderberg(), TinyJaderberg()
    arrays = random_dump(rng, source)
    arrays["fc3f"] = arrays["fc3f"][None, None]
    np.savez(tmp_path / "a.npz", **arrays)
    load_matconvnet_npz(source, tmp_path / "a.npz")
    save_matconvnet_npz(source, tmp_path / "b.npz", spatial_shapes={"fc1": (2, 3)})
    with np.load(tmp_path / "b.npz") as written:
        for key, value in arrays.items():
            np.testing.assert_array_equal(written[key].reshape(value.shape), value, err_msg=key)
    load_matconvnet_npz(target, tmp_path / "b.npz")
    for (name, a), (_, b) in zip(source.named_parameters(), target.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_charnet_round_trip(tmp_path):
    nl.manual_seed(2)
    source = jaderberg.charnet().eval()
    path = save_matconvnet_npz(source, tmp_path / "charnet.npz")
    with np.load(path) as dump:
        assert dump["fc1f"].shape == (4, 13, 512, 4096)
        assert dump["conv2f"].shape == (5, 5, 64, 128)
        assert dump["fc3f"].shape == (1, 1, 4096, 851)
    x = nl.tensor(np.random.default_rng(3).standard_normal((2, 1, 32, 100)), dtype=np.float32)
    with nl.no_grad():
        expected = source(x).numpy().copy()
    del source
    nl.manual_seed(4)
    target = jaderberg.charnet().eval()
    load_matconvnet_npz(target, path)
    with nl.no_grad():
        np.testing.assert_array_equal(target(x).numpy(), expected)


def test_errors_name_file_array_and_shape(tmp_path):
    rng = np.random.default_rng(5)
    model = TinyJaderberg()
    before = model.conv1.weight.numpy().copy()
    arrays = random_dump(rng, model)
    path = tmp_path / "bad.npz"

    broken = dict(arrays, conv2f=np.zeros((3, 2, 3, 2)))
    np.savez(path, **broken)
    with pytest.raises(MatConvNetImportError,
                       match=r"bad\.npz: array 'conv2f' has shape \(3, 2, 3, 2\); expected "
                             r"\(H, W, Cin, Cout\) = \(3, 2, 2, 3\) for conv2"):
        load_matconvnet_npz(model, path)
    np.testing.assert_array_equal(model.conv1.weight.numpy(), before)  # nothing half-loaded

    missing = {k: v for k, v in arrays.items() if k != "fc2b"}
    np.savez(path, **missing)
    with pytest.raises(MatConvNetImportError, match=r"bad\.npz has no array 'fc2b' for layer fc2"):
        load_matconvnet_npz(model, path)

    np.savez(path, **dict(arrays, fc1f=np.zeros((3, 3, 4, 6))))
    with pytest.raises(MatConvNetImportError, match=r"'fc1f' has shape \(3, 3, 4, 6\); expected "
                                                    r"\(H, W, C, out\) with C = 4, H \* W = 6"):
        load_matconvnet_npz(model, path)

    np.savez(path, **dict(arrays, conv3b=np.zeros(5)))
    with pytest.raises(MatConvNetImportError, match=r"'conv3b' has shape \(5,\); expected 3 "
                                                    r"biases"):
        load_matconvnet_npz(model, path)

    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(MatConvNetImportError, match=r"cannot read .*junk\.npz"):
        load_matconvnet_npz(model, tmp_path / "junk.npz")
    with pytest.raises(TypeError, match="has no weight layer 'conv1'"):
        load_matconvnet_npz(nn.Linear(2, 2), path)
