"""Model-level pruning: kernel masks over every Conv2D of any Keras model.

Works on our ``MicroConv2D`` (the mask is its ``mask`` weight) and on plain
``keras.layers.Conv2D`` (a kernel is alive while its weights are not all zero), also
inside nested Sequential/Functional sub-models. Dense, DepthwiseConv2D,
SeparableConv2D and Conv2DTranspose are never pruned (none is a Conv2D in Keras 3).
The per-layer decisions come from the NumPy engine, ``psykedelic_cli.pruning.modes``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from pathlib import Path

import keras
import numpy as np

from psykedelic_cli.errors import PsykError
from psykedelic_cli.models.layers import MicroConv2D, SwitchableL1, masked_kernel
from psykedelic_cli.pruning.modes import (
    DEFAULT_CONTRIBUTION_THRESHOLD,
    DEFAULT_RATE,
    DEFAULT_THRESHOLD,
    get_mode,
    layer_kernels,
    prune_mask,
    validate_pruning_parameters,
)
from psykedelic_cli.pruning.statistics import KernelStatistics, kernel_statistics


def _layers_in_order(model) -> Iterator[keras.layers.Layer]:
    """Every layer, depth first into nested models, in model order, each once."""
    seen: set[int] = set()

    def walk(container):
        for layer in container.layers:
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            yield layer
            if isinstance(layer, keras.Model):
                yield from walk(layer)

    return walk(model)


def conv_layers(model) -> list[keras.layers.Conv2D]:
    """The model's Conv2D layers (``MicroConv2D`` included) in model order; names must be unique."""
    layers = [layer for layer in _layers_in_order(model) if isinstance(layer, keras.layers.Conv2D)]
    names = [layer.name for layer in layers]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise PsykError(f"model {model.name!r} has several Conv2D layers named {', '.join(duplicates)}; rename them")
    unbuilt = [layer.name for layer in layers if not layer.built]
    if unbuilt:
        raise PsykError(f"model {model.name!r} is not built (Conv2D {unbuilt[0]!r} has no weights yet)")
    return layers


def _kernel(layer) -> np.ndarray:
    return keras.ops.convert_to_numpy(layer.kernel)


def _layer_mask(layer) -> np.ndarray:
    if isinstance(layer, MicroConv2D):
        return np.array(keras.ops.convert_to_numpy(layer.kernel_mask), dtype=np.float32)
    return np.any(_kernel(layer) != 0, axis=(0, 1)).astype(np.float32)


def get_masks(model) -> dict[str, np.ndarray]:
    """``{layer name: (C_in, C_out) float32 0/1}``: the mask weight, or for a plain Conv2D "kernel not all zero"."""
    return {layer.name: _layer_mask(layer) for layer in conv_layers(model)}


def set_masks(model, masks: Mapping[str, np.ndarray]) -> None:
    """Apply ``masks`` (a subset of layers is fine) monotonely: alive only where old AND new are alive.

    The stored kernel weights of dead kernels become exactly zero (a saved model shows
    them) and ``MicroConv2D`` mask weights are updated.
    """
    layers = {layer.name: layer for layer in conv_layers(model)}
    unknown = sorted(set(masks) - set(layers))
    if unknown:
        raise PsykError(f"no Conv2D layer named {', '.join(map(repr, unknown))} in model {model.name!r}")
    for name, mask in masks.items():
        layer = layers[name]
        current = _layer_mask(layer)
        requested = np.asarray(mask)
        if requested.shape != current.shape:
            raise PsykError(f"mask for layer {name!r} has shape {requested.shape}, expected {current.shape}")
        alive = np.minimum(current, (requested != 0).astype(np.float32))
        layer.kernel.assign(masked_kernel(layer.kernel, alive))
        if isinstance(layer, MicroConv2D):
            layer.kernel_mask.assign(alive)


def _mask_weight_ids(layers) -> set[int]:
    return {id(layer.kernel_mask) for layer in layers if isinstance(layer, MicroConv2D)}


def _size(weight) -> int:
    return math.prod(weight.shape)


def parameter_report(model, masks: Mapping[str, np.ndarray] | None = None) -> dict:
    """Active and total parameters per Conv2D layer and for the whole model.

    A layer's active parameters are all its parameters minus ``kh*kw`` per dead kernel;
    model totals count every weight (BN moving statistics included, masks excluded);
    ``compression_ratio = 1 - active/total``. ``masks`` overrides the model's own masks
    for the layers it names (to report a mask set without applying it).
    """
    layers = conv_layers(model)
    masks = {**get_masks(model), **(masks or {})}
    mask_ids = _mask_weight_ids(layers)
    rows = []
    for layer in layers:
        mask = masks[layer.name]
        kernel_h, kernel_w = layer.kernel.shape[:2]
        layer_params = sum(_size(w) for w in layer.weights if id(w) not in mask_ids)
        alive = int(np.count_nonzero(mask))
        rows.append(
            {
                "layer": layer.name,
                "active_params": layer_params - kernel_h * kernel_w * (mask.size - alive),
                "total_params": layer_params,
                "alive_kernels": alive,
                "total_kernels": int(mask.size),
            }
        )
    total = sum(_size(w) for w in model.weights if id(w) not in mask_ids)
    active = total - sum(row["total_params"] - row["active_params"] for row in rows)
    return {
        "layers": rows,
        "active_params": active,
        "total_params": total,
        "compression_ratio": 1.0 - active / total if total else 0.0,
        "alive_kernels": sum(row["alive_kernels"] for row in rows),
        "total_kernels": sum(row["total_kernels"] for row in rows),
    }


def compute_masks(
    model,
    mode: str,
    *,
    threshold: float,
    contribution_threshold: float,
    rate: float,
    seed: int | None = None,
    rng: np.random.Generator | None = None,
    statistics: Mapping[str, KernelStatistics] | None = None,
) -> dict[str, np.ndarray]:
    """The masks ``mode`` would leave on every Conv2D, starting from the current ones; nothing is applied.

    Random modes draw from ``rng``, else from ``numpy.random.default_rng(seed)`` with
    seed 0 when ``seed`` is None, so the same model and arguments give the same masks.
    One generator serves all layers in model order. ``statistics`` (from
    ``layer_statistics``) lets several modes share one computation on unchanged kernels.
    """
    spec = get_mode(mode)
    validate_pruning_parameters(threshold, contribution_threshold, rate)
    layers = conv_layers(model)
    if not layers:
        raise PsykError(f"model {model.name!r} has no Conv2D layer to prune")
    if rng is None:
        rng = np.random.default_rng(0 if seed is None else seed)
    return {
        layer.name: prune_mask(
            spec,
            _kernel(layer),
            _layer_mask(layer),
            threshold=threshold,
            contribution_threshold=contribution_threshold,
            rate=rate,
            rng=rng,
            stats=None if statistics is None else statistics[layer.name],
            layer=layer.name,
        )
        for layer in layers
    }


def layer_statistics(model) -> dict[str, KernelStatistics]:
    """Lazy kernel statistics of every Conv2D, keyed by layer name; valid while the kernels are unchanged."""
    return {
        layer.name: kernel_statistics(layer_kernels(_kernel(layer)), layer=layer.name) for layer in conv_layers(model)
    }


def prune_model(
    model,
    mode: str,
    threshold: float = DEFAULT_THRESHOLD,
    contribution_threshold: float = DEFAULT_CONTRIBUTION_THRESHOLD,
    rate: float = DEFAULT_RATE,
    seed: int | None = None,
) -> dict:
    """Kill the kernels ``mode`` marks (``compute_masks`` then ``set_masks``); ``parameter_report`` plus "mode"."""
    masks = compute_masks(
        model, mode, threshold=threshold, contribution_threshold=contribution_threshold, rate=rate, seed=seed
    )
    set_masks(model, masks)
    return {"mode": mode, **parameter_report(model)}


@contextlib.contextmanager
def trial_masks(model):
    """Snapshot every conv kernel and mask; restore them exactly on exit (also on error)."""
    layers = conv_layers(model)
    kernels = [_kernel(layer).copy() for layer in layers]
    masks = {layer.name: _layer_mask(layer) for layer in layers if isinstance(layer, MicroConv2D)}
    try:
        yield model
    finally:
        for layer, kernel in zip(layers, kernels):
            layer.kernel.assign(kernel)
            if layer.name in masks:
                layer.kernel_mask.assign(masks[layer.name])


def _plain_l1(regularizer):
    # A plain keras L1 with the current factor, so the stripped file needs nothing of ours.
    if isinstance(regularizer, SwitchableL1):
        return keras.regularizers.L1(regularizer.l1) if regularizer.l1 else None
    return regularizer


def _plain_clone(layer):
    config = layer.get_config()
    if isinstance(layer, keras.layers.Conv2D):
        config["kernel_regularizer"] = _plain_l1(layer.kernel_regularizer)
        return keras.layers.Conv2D.from_config(config)
    return layer.__class__.from_config(config)


def strip_masks(model) -> keras.Model:
    """A plain Keras copy: every Conv2D a ``keras.layers.Conv2D`` with dead kernels zeroed, no masks.

    ``SwitchableL1`` becomes ``keras.regularizers.L1`` with its current factor (none at
    0); every other weight is copied unchanged, so predictions are identical and the
    saved file loads with ``keras.models.load_model`` alone. The copy is not compiled.
    """
    layers = conv_layers(model)
    mask_ids = _mask_weight_ids(layers)
    mask_of_kernel = {id(layer.kernel): layer.kernel_mask for layer in layers if isinstance(layer, MicroConv2D)}
    plain = keras.models.clone_model(model, clone_function=_plain_clone, recursive=True)
    values = [
        keras.ops.convert_to_numpy(
            masked_kernel(weight, mask_of_kernel[id(weight)]) if id(weight) in mask_of_kernel else weight
        )
        for weight in model.weights
        if id(weight) not in mask_ids
    ]
    # Layer.weights lists each layer's own weights then its sub-layers', so the copy's
    # order is the original's with the masks left out.
    plain.set_weights(values)
    return plain


def set_l1_penalty(model, value: float) -> None:
    """Set the factor of every ``SwitchableL1`` on the model's conv kernels (0 switches the penalty off).

    A model built without an L1 penalty accepts 0 (nothing to switch off) and refuses
    a positive value.
    """
    if not (math.isfinite(value) and value >= 0):
        raise PsykError(f"L1 penalty must be a finite number ≥ 0, got {value!r}")
    regularizers = [
        layer.kernel_regularizer for layer in conv_layers(model) if isinstance(layer.kernel_regularizer, SwitchableL1)
    ]
    if value and not regularizers:
        raise PsykError(
            f"model {model.name!r} was built without an L1 penalty; build it with l1_penalty to set {value:g}"
        )
    for regularizer in regularizers:
        regularizer.assign(value)


def load_model(path) -> keras.Model:
    """A ``.keras`` model file (ours or plain Keras), uncompiled; PsykError when missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise PsykError(f"model file not found: {path}")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types (ValueError, OSError, zipfile errors, …) for a bad file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PsykError(f"cannot read Keras model {path}: {reason}") from exc


def save_model(model, path, *, keep_masks: bool = False) -> None:
    """Write ``model`` to a ``.keras`` file: plain Keras (``strip_masks``) unless ``keep_masks``."""
    path = Path(path)
    if path.suffix != ".keras":
        raise PsykError(f"a model is saved as a .keras file, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    (model if keep_masks else strip_masks(model)).save(path)
