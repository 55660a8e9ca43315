"""LSTM, GRU, LSTMCell and GRUCell with PyTorch's constructors, parameter
names, shapes and return values, so a PyTorch state dict converted to arrays
loads with load_state_dict.

Options beyond PyTorch, for importing Keras / TensorFlow models:
``gate_activation="hard_sigmoid"`` (Keras 2's LSTM default, clip(0.2 x + 0.5,
0, 1)) and, for the GRUs, ``reset_after=False`` (TensorFlow's GRUCell: the
reset gate multiplies h before the recurrent matmul of the candidate). The
default ``reset_after=True`` is PyTorch's formulation (and Keras 2.3+'s).
"""
import math

from nnlite import functional as F
from nnlite.functional import rnn as rnn_ops
from nnlite.functional.rnn_sequence import GATE_ACTIVATIONS
from nnlite.nn import init
from nnlite.nn.linear import empty_parameter
from nnlite.nn.module import Module


def _check_size(op, name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{op}: {name} must be an int >= {minimum}, got {value!r}")


def _check_options(op, gate_activation):
    if gate_activation not in GATE_ACTIVATIONS:
        raise ValueError(f"{op}: gate_activation={gate_activation!r} is not one of "
                         f"{GATE_ACTIVATIONS}")


class _RNNBase(Module):
    """Stacked, optionally bidirectional recurrent layers over whole sequences."""

    gates = None  # 4 for LSTM, 3 for GRU

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None,
                 gate_activation="sigmoid"):
        super().__init__()
        op = type(self).__name__
        _check_size(op, "input_size", input_size)
        _check_size(op, "hidden_size", hidden_size)
        _check_size(op, "num_layers", num_layers)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or \
                not 0 <= dropout <= 1:
            raise ValueError(f"{op}: dropout must be a probability in [0, 1], got {dropout!r}")
        _check_options(op, gate_activation)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bool(bias), bool(batch_first)
        self.dropout, self.bidirectional = float(dropout), bool(bidirectional)
        self.gate_activation = gate_activation
        directions = 2 if bidirectional else 1
        rows = self.gates * hidden_size
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for suffix in ("", "_reverse")[:directions]:
                tag = f"l{layer}{suffix}"
                setattr(self, f"weight_ih_{tag}",
                        empty_parameter((rows, layer_input), device, dtype))
                setattr(self, f"weight_hh_{tag}", empty_parameter((rows, hidden_size), device,
                                                                  dtype))
                if bias:
                    setattr(self, f"bias_ih_{tag}", empty_parameter((rows,), device, dtype))
                    setattr(self, f"bias_hh_{tag}", empty_parameter((rows,), device, dtype))
        self.reset_parameters()

    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    def reset_parameters(self):
        """PyTorch's: every weight and bias U(-1/sqrt(H), 1/sqrt(H))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for param in self.parameters():
            init.uniform_(param, -bound, bound)

    def _weights(self, layer, direction):
        tag = f"l{layer}{'_reverse' if direction else ''}"
        names = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if self.bias else ())
        weights = [getattr(self, f"{name}_{tag}") for name in names]
        return weights if self.bias else weights + [None, None]

    def _check_input(self, x):
        op = type(self).__name__
        layout = "(N, T, input_size)" if self.batch_first else "(T, N, input_size)"
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"{op}: input has shape {tuple(x.shape)}; expected {layout} with "
                             f"input_size={self.input_size}")
        return x.shape[0 if self.batch_first else 1]

    def _check_state(self, name, state, batch):
        expected = (self.num_layers * self.num_directions, batch, self.hidden_size)
        if state is not None and tuple(state.shape) != expected:
            raise ValueError(f"{type(self).__name__}: {name} has shape {tuple(state.shape)}; "
                             f"expected (num_layers * num_directions, N, hidden_size) = "
                             f"{expected}")

    def _run(self, x, states, lengths):
        """Runs every layer and direction; `states` is a tuple of (L*D, N, H)
        initial states or Nones. Returns the output and the final states, each
        stacked to (L*D, N, H)."""
        if self.batch_first:
            x = F.transpose(x, 0, 1)
        finals = [[] for _ in states]
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                index = layer * self.num_directions + direction
                initial = [None if s is None else s[index] for s in states]
                result = self._layer(layer_input, initial, self._weights(layer, direction),
                                     lengths, bool(direction))
                outputs.append(result[0])
                for final, value in zip(finals, result[1:]):
                    final.append(value)
            layer_input = outputs[0] if len(outputs) == 1 else F.cat(outputs, dim=2)
            if layer < self.num_layers - 1 and self.dropout > 0:
                layer_input = F.dropout(layer_input, self.dropout, self.training)
        output = F.transpose(layer_input, 0, 1) if self.batch_first else layer_input
        return output, [F.stack(final, dim=0) for final in finals]

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False), ("gate_activation", "sigmoid")):
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)!r}"
        return text


class LSTM(_RNNBase):
    """forward(input, hx=None, lengths=None) -> (output, (h_n, c_n)).

    input (T, N, input_size), or (N, T, input_size) with batch_first; hx =
    (h_0, c_0), each (num_layers * num_directions, N, hidden_size), zeros when
    omitted; output (T, N, num_directions * hidden_size). `lengths` (N,) runs
    a padded batch (see nnlite.functional.rnn)."""

    gates = 4

    def _layer(self, x, initial, weights, lengths, reverse):
        return rnn_ops.lstm_layer(x, initial[0], initial[1], *weights, lengths=lengths,
                                  reverse=reverse, gate_activation=self.gate_activation)

    def forward(self, input, hx=None, lengths=None):
        batch = self._check_input(input)
        h0, c0 = (None, None) if hx is None else hx
        self._check_state("h_0", h0, batch)
        self._check_state("c_0", c0, batch)
        output, (h_n, c_n) = self._run(input, (h0, c0), lengths)
        return output, (h_n, c_n)


class GRU(_RNNBase):
    """forward(input, hx=None, lengths=None) -> (output, h_n); shapes as LSTM's."""

    gates = 3

    def __init__(self, *args, reset_after=True, **kwargs):
        self.reset_after = bool(reset_after)
        super().__init__(*args, **kwargs)

    def _layer(self, x, initial, weights, lengths, reverse):
        return rnn_ops.gru_layer(x, initial[0], *weights, lengths=lengths, reverse=reverse,
                                 gate_activation=self.gate_activation,
                                 reset_after=self.reset_after)

    def forward(self, input, hx=None, lengths=None):
        batch = self._check_input(input)
        self._check_state("h_0", hx, batch)
        output, (h_n,) = self._run(input, (hx,), lengths)
        return output, h_n

    def extra_repr(self):
        return super().extra_repr() + ("" if self.reset_after else ", reset_after=False")


class _CellBase(Module):
    gates = None

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None,
                 gate_activation="sigmoid"):
        super().__init__()
        op = type(self).__name__
        _check_size(op, "input_size", input_size)
        _check_size(op, "hidden_size", hidden_size)
        _check_options(op, gate_activation)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bool(bias)
        self.gate_activation = gate_activation
        rows = self.gates * hidden_size
        self.weight_ih = empty_parameter((rows, input_size), device, dtype)
        self.weight_hh = empty_parameter((rows, hidden_size), device, dtype)
        if bias:
            self.bias_ih = empty_parameter((rows,), device, dtype)
            self.bias_hh = empty_parameter((rows,), device, dtype)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for param in self.parameters():
            init.uniform_(param, -bound, bound)

    def _check(self, x, states):
        """Returns (x as (N, I), whether it was unbatched, the states as (N, H))."""
        op = type(self).__name__
        unbatched = x.ndim == 1
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{op}: input has shape {tuple(x.shape)}; expected (N, input_size)"
                             f" or (input_size,) with input_size={self.input_size}")
        if unbatched:
            x = F.unsqueeze(x, 0)
        expected = (x.shape[0], self.hidden_size)
        checked = []
        for name, state in states:
            if state is not None:
                if unbatched and state.ndim == 1:
                    state = F.unsqueeze(state, 0)
                if tuple(state.shape) != expected:
                    raise ValueError(f"{op}: {name} has shape {tuple(state.shape)}; expected "
                                     f"(N, hidden_size) = {expected}")
            checked.append(state)
        return x, unbatched, checked

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            text += ", bias=False"
        if self.gate_activation != "sigmoid":
            text += f", gate_activation={self.gate_activation!r}"
        return text


class LSTMCell(_CellBase):
    """forward(input, hx=None) -> (h', c'); input (N, input_size), hx = (h, c)
    each (N, hidden_size), zeros when omitted."""

    gates = 4

    def forward(self, input, hx=None):
        h, c = (None, None) if hx is None else hx
        x, unbatched, (h, c) = self._check(input, (("h", h), ("c", c)))
        h_new, c_new = rnn_ops.lstm_cell(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih,
                                         self.bias_hh, gate_activation=self.gate_activation)
        if unbatched:
            return F.squeeze(h_new, 0), F.squeeze(c_new, 0)
        return h_new, c_new


class GRUCell(_CellBase):
    """forward(input, hx=None) -> h'; input (N, input_size), hx (N, hidden_size)."""

    gates = 3

    def __init__(self, *args, reset_after=True, **kwargs):
        self.reset_after = bool(reset_after)
        super().__init__(*args, **kwargs)

    def forward(self, input, hx=None):
        x, unbatched, (h,) = self._check(input, (("hx", hx),))
        h_new = rnn_ops.gru_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih,
                                 self.bias_hh, gate_activation=self.gate_activation,
                                 reset_after=self.reset_after)
        return F.squeeze(h_new, 0) if unbatched else h_new

    def extra_repr(self):
        return super().extra_repr() + ("" if self.reset_after else ", reset_after=False")
