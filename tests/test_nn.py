"""Module bookkeeping: names, modes, containers, state_dict, device and dtype moves."""
import copy
from collections import OrderedDict

import numpy as np
import pytest

import nnlite as nl
from nnlite import nn

# PyTorch's state_dict keys for Sequential(Linear, BatchNorm1d, ReLU, Linear),
# written out from torch 2.x so a renaming here cannot go unnoticed.
TORCH_KEYS = ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
              "1.num_batches_tracked", "3.weight", "3.bias"]


def mlp(seed=0):
    nl.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 3))
        self.heads = nn.ModuleList([nn.Linear(3, 1), nn.Linear(3, 2, bias=False)])
        self.scale = nn.Parameter(nl.ones(1))

    def forward(self, x):
        h = self.features(x)
        return [head(h) * self.scale for head in self.heads]


def test_named_parameters_use_dotted_names_in_pytorch_order():
    names = [name for name, _ in Net().named_parameters()]
    assert names == ["scale", "features.0.weight", "features.0.bias", "features.2.weight",
                     "features.2.bias", "heads.0.weight", "heads.0.bias", "heads.1.weight"]
    assert [n for n, _ in Net().named_parameters(recurse=False)] == ["scale"]


def test_named_modules_and_children():
    net = Net()
    assert [n for n, _ in net.named_children()] == ["features", "heads"]
    assert [n for n, _ in net.named_modules()] == [
        "", "features", "features.0", "features.1", "features.2", "heads", "heads.0",
        "heads.1"]
    assert len(list(net.modules())) == 8


def test_shared_parameter_is_listed_once():
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert model.num_parameters() == 6


def test_train_eval_propagate_and_return_self():
    net = Net()
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    assert net.train() is net
    assert all(m.training for m in net.modules())
    net.heads.eval()
    assert net.training and net.features[0].training and not net.heads[1].training


def test_zero_grad_sets_none_or_zeros():
    net = Net()
    outputs = net(nl.randn(5, 2))
    (outputs[0].sum() + outputs[1].sum()).backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_state_dict_names_match_pytorch_and_share_data():
    model = mlp()
    state = model.state_dict()
    assert isinstance(state, OrderedDict)
    assert list(state) == TORCH_KEYS
    assert state["0.weight"].data is model[0].weight.data
    assert not state["0.weight"].requires_grad
    assert state["1.num_batches_tracked"].dtype == np.int64
    assert state["1.num_batches_tracked"].shape == ()


def test_load_state_dict_round_trip_from_numpy_keeps_arrays():
    source, target = mlp(seed=1), mlp(seed=2)
    source.train()(nl.randn(6, 3))  # move running stats and the batch counter off their init
    arrays = {k: v.numpy().copy() for k, v in source.state_dict().items()}
    before = {k: v.data for k, v in target.state_dict().items()}
    result = target.load_state_dict(arrays)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for key, value in target.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), arrays[key])
        assert value.data is before[key], f"{key} was replaced instead of copied into"
    assert int(target[1].num_batches_tracked.item()) == 1


class ArrayLike:
    """Stands in for a foreign tensor type exposing only __array__."""

    def __init__(self, array):
        self.array = array

    def __array__(self, dtype=None, copy=None):
        return self.array if dtype is None else self.array.astype(dtype)


def test_load_state_dict_accepts_tensors_array_likes_and_converts_dtype():
    source, target = mlp(seed=3), mlp(seed=4)
    state = OrderedDict()
    for i, (key, value) in enumerate(source.state_dict().items()):
        array = value.numpy().astype(np.float64)  # float64 checkpoint into a float32 model
        state[key] = (nl.tensor(array), ArrayLike(array), array)[i % 3]
    target.load_state_dict(state)
    for key, value in target.state_dict().items():
        assert value.dtype == source.state_dict()[key].dtype
        np.testing.assert_allclose(value.numpy(), source.state_dict()[key].numpy(), rtol=1e-7)


def test_strict_load_lists_every_missing_and_unexpected_key_and_changes_nothing():
    model = mlp()
    state = {k: v.numpy() + 1 for k, v in mlp(seed=9).state_dict().items()}
    del state["0.bias"], state["1.running_var"]
    state["extra.weight"] = np.zeros(3)
    state["3.scale"] = np.zeros(3)
    before = model[0].weight.numpy().copy()
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    for key in ("0.bias", "1.running_var", "extra.weight", "3.scale"):
        assert f'"{key}"' in message
    assert "Missing key(s)" in message and "Unexpected key(s)" in message
    assert "Sequential" in message
    np.testing.assert_array_equal(model[0].weight.numpy(), before)


def test_shape_mismatch_names_key_and_both_shapes_even_when_not_strict():
    model = mlp()
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    state["3.weight"] = np.zeros((5, 4), np.float32)
    for strict in (True, False):
        with pytest.raises(nn.StateDictError, match=r"size mismatch for 3\.weight") as info:
            model.load_state_dict(state, strict=strict)
        assert "(5, 4)" in str(info.value) and "(2, 4)" in str(info.value)


def test_non_strict_load_returns_key_lists():
    model = mlp()
    state = {k: v.numpy() for k, v in mlp(seed=5).state_dict().items() if k != "3.bias"}
    state["head.weight"] = np.zeros(2)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert missing == ["3.bias"] and unexpected == ["head.weight"]
    np.testing.assert_array_equal(model[0].weight.numpy(), state["0.weight"])


def test_missing_num_batches_tracked_is_tolerated_as_pytorch_does():
    model = mlp()
    model(nl.randn(4, 3))
    state = {k: v.numpy() for k, v in model.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    assert model.load_state_dict(state).missing_keys == []
    assert model[1].num_batches_tracked.item() == 0


def test_load_state_dict_rejects_values_without_array_interface():
    model = mlp()
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    state["0.bias"] = object()
    with pytest.raises(RuntimeError, match="0.bias"):
        model.load_state_dict(state)


def test_double_and_float_convert_parameters_and_buffers():
    model = mlp()
    assert model.double() is model
    for name, tensor in model.state_dict().items():
        expected = np.int64 if name.endswith("num_batches_tracked") else np.float64
        assert tensor.dtype == expected, name
    assert model(nl.randn(4, 3, dtype=np.float64)).dtype == np.float64
    model.float()
    assert all(p.dtype == np.float32 for p in model.parameters())


def test_to_cpu_is_a_no_op_returning_self():
    model = mlp()
    arrays = [t.data for t in model.state_dict().values()]
    assert model.to("cpu") is model and model.cpu() is model
    assert [t.data for t in model.state_dict().values()] == arrays
    with pytest.raises(ValueError, match="unknown device"):
        model.to("tpu")


def test_to_device_moves_everything_and_keeps_parameter_objects(device):
    model = mlp()
    params = list(model.parameters())
    optimizer = nl.optim.SGD(model.parameters(), lr=0.1)
    model.to(device)
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    assert all(t.device == device for t in model.state_dict().values())
    out = model(nl.randn(4, 3).to(device))
    out.sum().backward()
    before = model[0].weight.numpy().copy()
    optimizer.step()
    assert not np.allclose(model[0].weight.numpy(), before)
    model.to("cpu")
    assert all(t.device == "cpu" for t in model.state_dict().values())


def test_optimizer_built_before_double_still_updates_the_model():
    model = mlp()
    optimizer = nl.optim.Adam(model.parameters(), lr=0.1)
    model(nl.randn(4, 3)).sum().backward()
    optimizer.step()
    model.double()
    model.zero_grad()
    model(nl.randn(4, 3, dtype=np.float64)).sum().backward()
    before = model[3].bias.numpy().copy()
    optimizer.step()
    assert model[3].bias.dtype == np.float64
    assert not np.allclose(model[3].bias.numpy(), before)
    assert optimizer.state[model[3].bias]["exp_avg"].dtype == np.float64


def test_repr_is_nested_like_pytorch():
    text = repr(nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU(), nn.Dropout(0.2))))
    assert text == ("Sequential(\n"
                    "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
                    "  (1): Sequential(\n"
                    "    (0): ReLU()\n"
                    "    (1): Dropout(p=0.2, inplace=False)\n"
                    "  )\n"
                    ")")


def test_sequential_indexing_slicing_and_editing():
    layers = [nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)]
    seq = nn.Sequential(*layers)
    assert len(seq) == 3 and seq[0] is layers[0] and seq[-1] is layers[2]
    assert list(seq) == layers
    tail = seq[1:]
    assert isinstance(tail, nn.Sequential) and [n for n, _ in tail.named_children()] == ["1", "2"]
    seq.append(nn.Sigmoid())
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    del seq[0]
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2"]
    with pytest.raises(IndexError, match="out of range"):
        seq[7]
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]
    assert named.fc is named[0]


def test_module_list_and_dict_register_children():
    blocks = nn.ModuleList([nn.Linear(2, 2)])
    blocks.append(nn.Linear(2, 3))
    blocks.extend([nn.Linear(3, 1)])
    assert len(blocks) == 3 and blocks[2].out_features == 1
    assert [n for n, _ in blocks.named_parameters()][-2:] == ["2.weight", "2.bias"]
    heads = nn.ModuleDict({"digit": nn.Linear(4, 10), "box": nn.Linear(4, 4)})
    assert list(heads.state_dict()) == ["digit.weight", "digit.bias", "box.weight", "box.bias"]
    assert "box" in heads and heads["digit"].out_features == 10


@pytest.mark.parametrize("register", [
    lambda m, name: nn.ModuleDict({name: nn.Linear(2, 2)}),
    lambda m, name: m.add_module(name, nn.Linear(2, 2)),
    lambda m, name: m.register_parameter(name, nn.Parameter(nl.ones(1))),
    lambda m, name: m.register_buffer(name, nl.ones(1)),
], ids=["ModuleDict", "add_module", "register_parameter", "register_buffer"])
@pytest.mark.parametrize("name", ["conv/1", "/", "a.b", ""])
def test_names_that_break_state_dict_keys_are_refused(register, name):
    # "." and "" as in PyTorch; "/" because it is HDF5's path separator: a
    # ModuleDict key "conv/1" used to save a checkpoint that could never load.
    with pytest.raises(nl.InvalidNameError, match=f"name {name!r} must be non-empty") as info:
        register(nn.Module(), name)
    assert isinstance(info.value, ValueError) and isinstance(info.value, KeyError)


def test_module_dict_key_may_not_hide_an_attribute():
    # PyTorch's rule: a key "training" would have replaced the train/eval flag.
    for key in ("training", "forward", "_parameters"):
        with pytest.raises(KeyError, match=f"already has an attribute {key!r}"):
            nn.ModuleDict({key: nn.Linear(2, 2)})
    heads = nn.ModuleDict({"box": nn.Linear(2, 2)})
    heads["box"] = nn.Linear(2, 3)  # replacing a key of the same kind is fine
    assert heads["box"].out_features == 3 and heads.training is True
    with pytest.raises(KeyError, match="already has an attribute 'box'"):
        heads.register_parameter("box", nn.Parameter(nl.ones(1)))


def test_assignment_still_replaces_an_attribute_of_another_kind():
    module = nn.Module()
    module.extra = 3
    module.extra = nn.Parameter(nl.ones(2))  # as in PyTorch: assignment replaces
    module.head = nn.Linear(2, 2)
    module.head = nn.Parameter(nl.zeros(1))
    assert list(module.state_dict()) == ["extra", "head"]


def test_buffers_persistent_and_not():
    module = nn.Module()
    module.register_buffer("kept", nl.zeros(2))
    module.register_buffer("scratch", nl.ones(2), persistent=False)
    assert [n for n, _ in module.named_buffers()] == ["kept", "scratch"]
    assert list(module.state_dict()) == ["kept"]
    assert module.scratch.numpy().tolist() == [1.0, 1.0]


def test_registration_errors_are_explicit():
    class Early(nn.Module):
        def __init__(self):
            self.weight = nn.Parameter(nl.ones(1))

    with pytest.raises(AttributeError, match=r"super\(\)\.__init__\(\)"):
        Early()
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="parameter 'weight'"):
        layer.weight = nl.ones(2, 2)
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'wieght'"):
        layer.wieght
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)


def test_deepcopy_gives_independent_parameters():
    model = mlp()
    clone = copy.deepcopy(model)
    clone[0].weight.data[...] = 0
    assert model[0].weight.numpy().any()
    assert list(clone.state_dict()) == TORCH_KEYS


def test_apply_visits_every_module_children_first():
    visited = []
    Net().apply(lambda m: visited.append(type(m).__name__))
    assert visited[-1] == "Net" and visited.count("Linear") == 4

    def glorot(m):
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)

    model = mlp().apply(glorot)
    assert not model[3].bias.numpy().any()
