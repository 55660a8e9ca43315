"""Module.register_forward_hook with PyTorch's semantics."""
import numpy as np
import pytest

import nnlite as nl
from nnlite import nn


def test_hook_sees_module_inputs_and_output_and_can_be_removed():
    layer = nn.Linear(3, 2)
    seen = []
    handle = layer.register_forward_hook(lambda m, inputs, output: seen.append((m, inputs,
                                                                                output)))
    x = nl.randn(4, 3)
    y = layer(x)
    assert len(seen) == 1
    module, inputs, output = seen[0]
    assert module is layer and isinstance(inputs, tuple) and inputs[0] is x and output is y
    handle.remove()
    layer(x)
    assert len(seen) == 1
    handle.remove()  # idempotent


def test_hooks_run_in_registration_order_and_a_return_value_replaces_the_output():
    layer = nn.ReLU()
    order = []
    layer.register_forward_hook(lambda m, i, o: order.append("first"))
    layer.register_forward_hook(lambda m, i, o: (order.append("second"), o * 2)[1])
    layer.register_forward_hook(lambda m, i, o: order.append(("third", o.numpy().tolist())))
    y = layer(nl.tensor([[-1.0, 3.0]]))
    assert order == ["first", "second", ("third", [[0.0, 6.0]])]
    np.testing.assert_array_equal(y.numpy(), [[0.0, 6.0]])


def test_hooks_fire_on_nested_modules_and_gradients_flow_through_replaced_outputs():
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    names = []
    handles = [m.register_forward_hook(lambda m, i, o, name=name: names.append(name))
               for name, m in model.named_modules()]
    model[1].register_forward_hook(lambda m, i, o: o * 0)  # zeroes what follows
    model(nl.randn(5, 2)).sum().backward()
    assert names == ["0", "1", "2", ""]  # children first, the container when it returns
    assert np.all(model[0].weight.grad.numpy() == 0)
    for handle in handles:
        handle.remove()
    assert all(not m._forward_hooks for name, m in model.named_modules() if name != "1")


def test_handle_as_context_manager_and_bad_hook():
    layer = nn.Identity()
    calls = []
    with layer.register_forward_hook(lambda m, i, o: calls.append(1)):
        layer(nl.zeros(1))
    layer(nl.zeros(1))
    assert calls == [1]
    with pytest.raises(TypeError, match="register_forward_hook: hook must be callable"):
        layer.register_forward_hook("not a function")
