"""Thinning: dead convolution filters and unused input channels removed from a Keras model, predictions unchanged.

A pruned model keeps its dead kernels as zeros inside dense convolutions; ``thin_model``
rebuilds it with fewer filters, so it is genuinely smaller and faster. The model's graph
is read node by node. Every channel of every tensor is an *element*; layers that work
channel by channel (BatchNormalization, activations, pooling, dropout, padding,
DepthwiseConv2D, reshaping that keeps the channels), additions and concatenations tie elements into *groups* that go or
stay together (an addition ties channel c of every branch and of its sum, so a channel
leaves a residual stream only where it can leave every branch). Conv2D and Dense layers
end a group: their output channels start new ones, their input channels are *read*.

A group goes only when removing it leaves every prediction as it was:

- each read contributes exactly nothing (the reader's weights for that channel are all
  zero, or the channel is the constant 0), or a constant the reader folds exactly into
  its bias (a Dense, or a Conv2D that does not pad: ``valid``, or ``same`` with nothing to
  pad such as 1×1 kernels). A constant other than 0 read by a padding convolution is not
  constant at the borders, so its group stays;
- none of its elements is a model input or output, or passes through a layer not
  looked through (any other class, a shared layer, a nested model, channels-first data).

A dead filter (all its kernels zero) outputs ``activation(bias)``; per-channel layers map
that constant through (computed by calling the layer itself on constant inputs and
checked to stay constant). Channels that stay although a filter feeding them is dead are
reported with the reason.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import keras
import numpy as np

from psykedelic_cli.errors import PsykError
from psykedelic_cli.models.layers import MicroConv2D
from psykedelic_cli.models.surgery import conv_layer_paths, has_lora, layer_paths, strip_masks

_CHANNELWISE_NAMES = (
    "BatchNormalization", "Activation", "ReLU", "LeakyReLU", "ELU", "Dropout", "SpatialDropout2D",
    "GaussianNoise", "GaussianDropout", "AlphaDropout", "MaxPooling2D", "AveragePooling2D",
    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "ZeroPadding2D", "Cropping2D", "UpSampling2D", "Identity",
)
_CHANNELWISE = tuple(getattr(keras.layers, name) for name in _CHANNELWISE_NAMES if hasattr(keras.layers, name))
_ELEMENTWISE = (
    keras.layers.Add, keras.layers.Subtract, keras.layers.Average,
    keras.layers.Maximum, keras.layers.Minimum, keras.layers.Multiply,
)
_CHANNEL_MIXING_ACTIVATIONS = {"softmax", "log_softmax"}
_SHOWN_NAMES = 3
_PROBE_SIZE = 16  # the spatial size of a probe where the model leaves it open


def _names(names) -> str:
    names = list(dict.fromkeys(names))
    listed = ", ".join(names[:_SHOWN_NAMES])
    return listed if len(names) <= _SHOWN_NAMES else f"{listed} and {len(names) - _SHOWN_NAMES} more"


def _numpy(weight) -> np.ndarray:
    return keras.ops.convert_to_numpy(weight)


def _activation_name(layer) -> str:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", str(activation))


@dataclass
class _Tensor:
    offset: int
    channels: int
    shape: tuple


@dataclass
class _Read:
    """Channel ``channel`` of the reader's input is element ``element``."""

    element: int
    reader: str
    channel: int


@dataclass
class _Reader:
    """A Conv2D or Dense whose input channels may go (weights sliced, constants folded into the bias)."""

    layer: keras.layers.Layer
    source: int  # id of the input tensor
    target: int  # id of the output tensor
    kernel: np.ndarray
    bias: np.ndarray | None
    pads: bool
    zero_rows: np.ndarray  # (C_in,) bool: the weights for that input channel are all zero
    fold: np.ndarray | None = None  # (C_out,) float64: added to the bias for the removed constant channels
    folded: int = 0  # how many removed input channels were constants folded into the bias


class _Graph:
    """Elements (tensor channels), the groups they form, what each one reads and what fixes it in place."""

    def __init__(self, model: keras.Model):
        self.tensors: dict[int, _Tensor] = {}
        self.parent: list[int] = []
        self.const: list[float] = []  # NaN: not known to be constant
        self.fixed: dict[int, str] = {}
        self.reads: list[_Read] = []
        self.readers: dict[str, _Reader] = {}
        self.producers: list[tuple[int, str, int]] = []  # (element, Conv2D name, filter)
        self.dead: dict[str, np.ndarray] = {}  # Conv2D name: indices of its dead filters
        self.varied: dict[int, str] = {}  # element: the layer that turned its constant input into a varying output
        self.untouched: dict[str, str] = {}  # top-level layer name: why it is left as it is
        self.reshapes: dict[str, int] = {}  # Reshape name: id of its output tensor
        self.channelwise: dict[str, int] = {}  # name of a channel-wise layer with weights: id of its input tensor
        uses: dict[int, int] = {}
        nodes = [node for depth in sorted(model._nodes_by_depth, reverse=True) for node in model._nodes_by_depth[depth]]
        for node in nodes:
            if node.operation is not None:
                uses[id(node.operation)] = uses.get(id(node.operation), 0) + 1
        for tensor in model.inputs:
            self._fix_all(self._tensor(tensor), "a model input")
        for node in nodes:
            if node.operation is None or node.is_input:
                continue
            self._node(node, shared=uses[id(node.operation)] > 1)
        for tensor in model.outputs:
            self._fix_all(self._tensor(tensor), "a model output")

    # --- elements and groups -------------------------------------------------------------

    def _tensor(self, tensor) -> _Tensor:
        known = self.tensors.get(id(tensor))
        if known is not None:
            return known
        shape = tuple(tensor.shape)
        fixed = len(shape) < 2 or shape[-1] is None
        channels = 1 if fixed else int(shape[-1])
        entry = _Tensor(len(self.parent), channels, shape)
        self.tensors[id(tensor)] = entry
        self.parent.extend(range(entry.offset, entry.offset + channels))
        self.const.extend([math.nan] * channels)
        if fixed:
            self._fix_all(entry, "a tensor without a channel axis")
        return entry

    def find(self, element: int) -> int:
        root = element
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[element] != root:
            self.parent[element], element = root, self.parent[element]
        return root

    def _union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)

    def _fix_all(self, tensor: _Tensor, reason: str) -> None:
        for element in range(tensor.offset, tensor.offset + tensor.channels):
            self.fixed.setdefault(element, reason)

    # --- one node at a time ----------------------------------------------------------------

    def _node(self, node, *, shared: bool) -> None:
        layer = node.operation
        inputs = [self._tensor(t) for t in node.input_tensors]
        outputs = [self._tensor(t) for t in node.output_tensors]
        handler = None if shared else self._handler(layer, inputs, outputs)
        if handler is None:
            why = "a layer used more than once" if shared else f"a {type(layer).__name__}, not looked through"
            self.untouched[layer.name] = why
            for tensor in inputs:
                self._fix_all(tensor, f"it goes into {layer.name} ({why})")
            for tensor in outputs:
                self._fix_all(tensor, f"it comes out of {layer.name} ({why})")
            return
        handler(node, layer, inputs, outputs)

    def _handler(self, layer, inputs, outputs):
        if len(outputs) != 1 or getattr(layer, "data_format", "channels_last") != "channels_last":
            return None
        out = outputs[0]
        if getattr(layer, "lora_enabled", False) or getattr(layer, "quantization_mode", None):
            return None  # weights that are not one plain kernel and bias
        if type(layer) is keras.layers.Conv2D and len(inputs) == 1:
            if layer.groups == 1 and _activation_name(layer) not in _CHANNEL_MIXING_ACTIVATIONS:
                return self._conv
        elif type(layer) is keras.layers.Dense and len(inputs) == 1:
            return self._dense
        elif isinstance(layer, _CHANNELWISE) and len(inputs) == 1 and inputs[0].channels == out.channels:
            if isinstance(layer, keras.layers.BatchNormalization) and layer.axis not in (-1, len(out.shape) - 1):
                return None
            if isinstance(layer, keras.layers.Activation) and _activation_name(layer) in _CHANNEL_MIXING_ACTIVATIONS:
                return None
            return self._channelwise
        elif isinstance(layer, keras.layers.DepthwiseConv2D) and layer.depth_multiplier == 1 and len(inputs) == 1:
            if _activation_name(layer) not in _CHANNEL_MIXING_ACTIVATIONS:
                return self._channelwise
        elif isinstance(layer, keras.layers.Reshape) and len(inputs) == 1 and inputs[0].channels == out.channels:
            if len(inputs[0].shape) >= 2 and len(out.shape) >= 2:
                return self._reshape
        elif isinstance(layer, _ELEMENTWISE) and all(t.shape == out.shape for t in inputs):
            return self._elementwise
        elif isinstance(layer, keras.layers.Concatenate) and layer.axis in (-1, len(out.shape) - 1):
            if sum(t.channels for t in inputs) == out.channels:
                return self._concatenate
        elif isinstance(layer, keras.layers.Flatten) and len(inputs) == 1 and None not in inputs[0].shape[1:]:
            return self._flatten
        return None

    def _conv(self, node, layer, inputs, outputs):
        source, target = inputs[0], outputs[0]
        kernel = _numpy(layer.kernel)
        bias = _numpy(layer.bias) if layer.use_bias else None
        zero_rows = ~np.any(kernel != 0, axis=(0, 1, 3))
        self._reader(layer, node, source, target, kernel, bias, _pads(layer, source.shape), zero_rows)
        dead = ~np.any(kernel != 0, axis=(0, 1, 2))
        self.dead[layer.name] = np.flatnonzero(dead)
        if dead.any():
            pre = np.where(dead, bias if bias is not None else 0.0, 0.0).astype(kernel.dtype)
            value = _numpy(layer.activation(keras.ops.convert_to_tensor(pre)))
            for filter_index in np.flatnonzero(dead):
                self.const[target.offset + filter_index] = float(value[filter_index])
        for filter_index in range(target.channels):
            self.producers.append((target.offset + filter_index, layer.name, filter_index))

    def _dense(self, node, layer, inputs, outputs):
        source, target = inputs[0], outputs[0]
        kernel = _numpy(layer.kernel)
        bias = _numpy(layer.bias) if layer.use_bias else None
        self._reader(layer, node, source, target, kernel, bias, False, ~np.any(kernel != 0, axis=1))
        self._fix_all(target, f"it is an output of the Dense {layer.name}")

    def _reader(self, layer, node, source, target, kernel, bias, pads, zero_rows):
        reader = _Reader(layer, id(node.input_tensors[0]), id(node.output_tensors[0]), kernel, bias, pads, zero_rows)
        self.readers[layer.name] = reader
        for channel in range(source.channels):
            self.reads.append(_Read(source.offset + channel, layer.name, channel))

    def _probe(self, layer, node, inputs: list[_Tensor], out: _Tensor) -> np.ndarray | None:
        """The output's constant channels (NaN elsewhere) when the inputs' constant channels are fed to ``layer``."""
        values = [np.array(self.const[t.offset:t.offset + t.channels]) for t in inputs]
        if all(np.isnan(v).all() for v in values):
            return None
        # The layers probed act alike at every size (channel by channel), so an unknown size is probed at one.
        shapes = [tuple(_PROBE_SIZE if d is None else d for d in t.shape[1:]) for t in inputs]
        arrays = [np.broadcast_to(np.nan_to_num(v, nan=0.0), (1, *shape)).astype(tensor.dtype)
                  for shape, v, tensor in zip(shapes, values, node.input_tensors)]
        arguments = arrays if len(arrays) > 1 else arrays[0]
        try:
            result = _numpy(layer(arguments, training=False) if _takes_training(layer) else layer(arguments))
        except Exception:  # a layer that cannot be probed leaves its outputs unknown, which is safe
            return None
        flat = result.reshape(-1, out.channels)
        known = np.logical_and.reduce([~np.isnan(v) for v in values])
        constant = np.all(flat == flat[0], axis=0) & known
        for channel in np.flatnonzero(known & ~constant):
            self.varied[out.offset + channel] = layer.name
        return np.where(constant, flat[0], np.nan)

    def _set_constants(self, out: _Tensor, values) -> None:
        if values is not None:
            for channel in np.flatnonzero(~np.isnan(values)):
                self.const[out.offset + channel] = float(values[channel])

    def _channelwise(self, node, layer, inputs, outputs):
        source, target = inputs[0], outputs[0]
        for channel in range(source.channels):
            self._union(source.offset + channel, target.offset + channel)
        self._set_constants(target, self._probe(layer, node, inputs, target))
        if layer.weights:
            self.channelwise[layer.name] = id(node.input_tensors[0])

    def _reshape(self, node, layer, inputs, outputs):
        source, target = inputs[0], outputs[0]
        for channel in range(source.channels):
            self._union(source.offset + channel, target.offset + channel)
            self.const[target.offset + channel] = self.const[source.offset + channel]
        self.reshapes[layer.name] = id(node.output_tensors[0])

    def _elementwise(self, node, layer, inputs, outputs):
        target = outputs[0]
        for tensor in inputs:
            for channel in range(tensor.channels):
                self._union(tensor.offset + channel, target.offset + channel)
        self._set_constants(target, self._probe(layer, node, inputs, target))

    def _concatenate(self, node, layer, inputs, outputs):
        target, offset = outputs[0], 0
        for tensor in inputs:
            for channel in range(tensor.channels):
                self._union(tensor.offset + channel, target.offset + offset + channel)
                self.const[target.offset + offset + channel] = self.const[tensor.offset + channel]
            offset += tensor.channels

    def _flatten(self, node, layer, inputs, outputs):
        # Channels last: unit p·C + c of the flat vector is channel c at position p.
        source, target = inputs[0], outputs[0]
        for unit in range(target.channels):
            channel = unit % source.channels
            self._union(source.offset + channel, target.offset + unit)
            self.const[target.offset + unit] = self.const[source.offset + channel]


def _takes_training(layer) -> bool:
    return "training" in inspect.signature(layer.call).parameters


def _pads(layer, input_shape) -> bool:
    """Whether the Conv2D pads its input (``same`` padding with something to pad, at the given input size)."""
    if layer.padding == "valid":
        return False
    for axis in range(2):
        size, kernel = input_shape[1 + axis], layer.kernel_size[axis]
        stride, dilation = layer.strides[axis], layer.dilation_rate[axis]
        if size is None:  # unknown until called: anything wider than 1 may pad
            if kernel > 1:
                return True
            continue
        if max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0) > 0:
            return True
    return False


def _read_outcome(graph: _Graph, read: _Read) -> str | None:
    """None when the read contributes exactly nothing or a foldable constant; else why the channel must stay."""
    reader = graph.readers[read.reader]
    if reader.zero_rows[read.channel]:
        return None
    value = graph.const[read.element]
    if math.isnan(value):
        return "live"
    if value == 0 or not reader.pads:
        return None
    return f"it is the constant {value:.4g}, which the zero padding of {read.reader} makes position-dependent"


def _decide(graph: _Graph) -> tuple[set[int], dict[int, str]]:
    """The groups (roots) that go, and why each other group stays."""
    groups: dict[int, list[int]] = {}
    for element in range(len(graph.parent)):
        groups.setdefault(graph.find(element), []).append(element)
    reads: dict[int, list[_Read]] = {}
    for read in graph.reads:
        reads.setdefault(graph.find(read.element), []).append(read)
    live_producers: dict[int, list[str]] = {}
    for element, name, _ in graph.producers:
        if math.isnan(graph.const[element]):
            live_producers.setdefault(graph.find(element), []).append(name)
    removed, kept = set(), {}
    for root, elements in groups.items():
        fixed = next((graph.fixed[e] for e in elements if e in graph.fixed), None)
        if fixed is not None:
            kept[root] = fixed
            continue
        blocks = [(read, outcome) for read in reads.get(root, []) if (outcome := _read_outcome(graph, read))]
        if not blocks:
            removed.add(root)
            continue
        read, outcome = blocks[0]
        if outcome == "live":
            readers = _names(r.reader for r, o in blocks if o == "live")
            if root in live_producers:
                outcome = f"it is alive in {_names(live_producers[root])} and read by {readers}"
            else:
                varied = _names(graph.varied[e] for e in elements if e in graph.varied) or "a layer"
                outcome = f"{varied} makes its constant position-dependent, and {readers} reads it"
        kept[root] = outcome
    # A tensor keeps at least one channel: a layer of width 0 is no layer.
    while True:
        empty = [t for t in graph.tensors.values()
                 if all(graph.find(t.offset + c) in removed for c in range(t.channels))]
        if not empty:
            return removed, kept
        root = graph.find(empty[0].offset)
        removed.discard(root)
        kept[root] = "a layer keeps at least one channel"


def _flops(layer, output_shape, in_channels: int, out_channels: int) -> int:
    """2 × multiply-accumulates per example of a Conv2D or Dense with the given channel counts."""
    positions = math.prod(d for d in output_shape[1:-1] if d is not None)
    taps = math.prod(layer.kernel_size) if isinstance(layer, keras.layers.Conv2D) else 1
    return 2 * taps * in_channels * out_channels * positions


def _reader_weights(reader: _Reader, kept_in: np.ndarray, kept_out: np.ndarray) -> list[np.ndarray]:
    """The kernel (and bias, with the folded constants) of a Conv2D or Dense, sliced to the kept channels."""
    kernel = reader.kernel[..., kept_in, :][..., kept_out]
    if reader.bias is None and not np.any(reader.fold != 0):
        return [kernel]
    bias = np.zeros(reader.kernel.shape[-1]) if reader.bias is None else reader.bias.astype(np.float64)
    return [kernel, (bias + reader.fold).astype(reader.kernel.dtype)[kept_out]]


def _channel_weights(layer, mask: np.ndarray) -> list[np.ndarray]:
    """The weights of a channel-wise layer for the kept channels: BatchNormalization's four vectors,
    a DepthwiseConv2D's kernel (kh, kw, C, 1) and bias (C,)."""
    weights = [_numpy(w) for w in layer.weights]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return [weights[0][:, :, mask], *(w[mask] for w in weights[1:])]
    return [w[..., mask] if w.ndim and w.shape[-1] == mask.size else w for w in weights]


def _functional(model) -> keras.Model:
    # Masks stripped and LoRA factors merged: plain layers whose kernels are the effective ones.
    if has_lora(model) or any(isinstance(layer, MicroConv2D) for layer in layer_paths(model).values()):
        model = strip_masks(model)
    if isinstance(model, keras.Sequential):
        if not model.built or not model.inputs:
            raise PsykError(f"model {model.name!r} is not built: give its input shape (keras.Input) to thin it")
        return keras.Model(model.inputs, model.outputs, name=model.name)
    if not isinstance(model, keras.Model) or not hasattr(model, "_nodes_by_depth"):
        raise PsykError(
            f"model {model.name!r} is a subclassed {type(model).__name__}; psyk thin needs a Functional or "
            "Sequential model (its graph says which channel feeds which layer)"
        )
    return model


def thin_model(model) -> tuple[keras.Model, dict]:
    """A smaller plain Keras copy of ``model`` without its dead filters and unused input channels, and the report.

    ``model``: a Functional or Sequential Keras model, built (our ``MicroConv2D`` layers
    are stripped to ``Conv2D`` first; their masks say which kernels are dead, as the
    all-zero kernels do for a plain ``Conv2D``). The copy computes the same predictions
    (up to float32 rounding of folded constants) and is not compiled; it holds only
    built-in Keras layers and loads with ``keras.models.load_model``.

    The report: ``layers``, one row per Conv2D and Dense it looks through (``layer``, ``class``,
    ``filters_before/after`` (output channels), ``channels_before/after`` (input channels),
    ``params_before/after``, ``flops_before/after`` (2 × multiply-accumulates per example),
    ``dead_filters``, ``dead_filters_kept``, ``folded_channels`` (removed constant input
    channels folded into the bias)); ``kept``: ``[{"layer", "filters", "reason"}]``, the dead
    filters that stay and why; ``untouched``: ``[{"layer", "dead_filters", "reason"}]``, the
    Conv2D layers (by path) with dead filters left as they are (shared, or inside a layer not
    looked through); and model totals ``params_before/after`` (every weight,
    BN statistics included) and ``flops_before/after`` (Conv2D and Dense only).
    PsykError for a subclassed or unbuilt model.
    """
    source = _functional(model)
    graph = _Graph(source)
    removed, kept_reasons = _decide(graph)
    masks = {
        tid: np.array([graph.find(t.offset + c) not in removed for c in range(t.channels)], dtype=bool)
        for tid, t in graph.tensors.items()
    }
    for reader in graph.readers.values():
        _fold(graph, reader, masks[reader.source])

    def rebuilt(layer):
        config = layer.get_config()
        reader = graph.readers.get(layer.name)
        if reader is not None:
            if isinstance(layer, keras.layers.Conv2D):
                config["filters"] = int(masks[reader.target].sum())
            if not config.get("use_bias", True) and np.any(reader.fold != 0):
                config["use_bias"] = True
        if layer.name in graph.reshapes:
            config["target_shape"] = (*config["target_shape"][:-1], int(masks[graph.reshapes[layer.name]].sum()))
        return layer.__class__.from_config(config)

    thinned = keras.models.clone_model(source, clone_function=rebuilt)
    thinned_layers = {layer.name: layer for layer in thinned.layers}
    for layer in source.layers:
        if not layer.weights:
            continue
        reader = graph.readers.get(layer.name)
        if reader is not None:
            keep_in, keep_out = np.flatnonzero(masks[reader.source]), np.flatnonzero(masks[reader.target])
            weights = _reader_weights(reader, keep_in, keep_out)
        elif layer.name in graph.channelwise:
            weights = _channel_weights(layer, masks[graph.channelwise[layer.name]])
        else:
            weights = [_numpy(w) for w in layer.weights]
        thinned_layers[layer.name].set_weights(weights)
    return thinned, _report(graph, source, thinned, masks, kept_reasons)


def _untouched_convs(graph: _Graph, source) -> list[dict]:
    """The Conv2D layers with dead filters that are left as they are: in layers not looked through, or shared."""
    rows = []
    for path, layer in conv_layer_paths(source).items():
        top = path.split("/")[0]
        if top not in graph.untouched:
            continue
        dead = int(np.count_nonzero(~np.any(_numpy(layer.kernel) != 0, axis=(0, 1, 2))))
        if dead:
            where = graph.untouched[top] if top == path else f"inside {top}, {graph.untouched[top]}"
            rows.append({"layer": path, "dead_filters": dead, "reason": where})
    return rows


def _fold(graph: _Graph, reader: _Reader, kept: np.ndarray) -> None:
    """``reader.fold``: what the removed constant input channels added to each output, for the bias."""
    reader.fold = np.zeros(reader.kernel.shape[-1], np.float64)
    reader.folded = 0
    offset = graph.tensors[reader.source].offset
    for channel in np.flatnonzero(~kept):
        value = graph.const[offset + channel]
        if reader.zero_rows[channel] or math.isnan(value) or value == 0:
            continue
        rows = reader.kernel[..., channel, :]
        reader.fold += value * rows.reshape(-1, rows.shape[-1]).sum(axis=0, dtype=np.float64)
        reader.folded += 1


def _report(graph: _Graph, source, thinned, masks, kept_reasons) -> dict:
    rows, kept_rows = [], []
    for name, reader in graph.readers.items():
        layer = reader.layer
        kept_in, kept_out = masks[reader.source], masks[reader.target]
        in_tensor, out_tensor = graph.tensors[reader.source], graph.tensors[reader.target]
        dead = graph.dead.get(name, np.array([], int))
        staying = [int(f) for f in dead if kept_out[f]]
        reasons: dict[str, list[int]] = {}
        for f in staying:
            reasons.setdefault(kept_reasons[graph.find(out_tensor.offset + f)], []).append(f)
        kept_rows.extend({"layer": name, "filters": filters, "reason": why} for why, filters in reasons.items())
        rows.append({
            "layer": name,
            "class": type(layer).__name__,
            "filters_before": out_tensor.channels,
            "filters_after": int(kept_out.sum()),
            "channels_before": in_tensor.channels,
            "channels_after": int(kept_in.sum()),
            "params_before": layer.count_params(),
            "params_after": thinned.get_layer(name).count_params(),
            "flops_before": _flops(layer, out_tensor.shape, in_tensor.channels, out_tensor.channels),
            "flops_after": _flops(layer, out_tensor.shape, int(kept_in.sum()), int(kept_out.sum())),
            "dead_filters": len(dead),
            "dead_filters_kept": len(staying),
            "folded_channels": reader.folded,
        })
    return {
        "model": source.name,
        "layers": rows,
        "kept": kept_rows,
        "untouched": _untouched_convs(graph, source),
        "params_before": source.count_params(),
        "params_after": thinned.count_params(),
        "flops_before": sum(row["flops_before"] for row in rows),
        "flops_after": sum(row["flops_after"] for row in rows),
    }
