"""Model-level pruning: kernel masks over every Conv2D of any Keras model.

Works on our ``MicroConv2D`` (the mask is its ``mask`` weight) and on plain
``keras.layers.Conv2D`` (a kernel is alive while its weights are not all zero),
however nested: in sub-models, wrappers (``TimeDistributed``) and custom layers
holding layers. A layer is known by its path in the model (``tower_a/conv``), so
equally named layers of two sub-models never clash. Dense, DepthwiseConv2D,
SeparableConv2D and Conv2DTranspose are never pruned (none is a Conv2D in Keras 3).
The per-layer decisions come from the NumPy engine, ``psykedelic_cli.pruning.modes``;
kernels are written back in NumPy, so surviving kernels keep every bit.

A Conv2D with LoRA on (``lora_rank``, ``enable_lora``) is pruned by its effective
kernel (``effective_kernel``): statistics, masks and the kernel analysis see what the
layer convolves with. Writing a mask merges the factors into the kernel variable
(``lora_kernel_b`` set to zero), so the dead kernels are zero in the effective kernel;
a written model has LoRA off (``merge_lora``, ``strip_masks``).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import keras
import numpy as np

from psykedelic_cli.backends.compiled import refresh_compiled_steps
from psykedelic_cli.errors import PsykError
from psykedelic_cli.models.layers import MicroConv2D, SwitchableL1
from psykedelic_cli.pruning.modes import (
    DEFAULT_CONTRIBUTION_THRESHOLD,
    DEFAULT_RATE,
    DEFAULT_THRESHOLD,
    get_mode,
    layer_kernels,
    prune_mask,
    validate_pruning_parameters,
)
from psykedelic_cli.pruning.statistics import KernelStatistics, kernel_statistics, require_finite


def _sublayers(layer) -> list[keras.layers.Layer]:
    """The layers ``layer`` holds directly: a model's layers, a wrapper's layer, a composite layer's parts."""
    if isinstance(layer, keras.Model):
        return list(layer.layers)
    # Keras 3 tracks every layer assigned to an attribute (TimeDistributed.layer, the parts
    # of a custom block) but exposes them publicly only on models.
    return list(layer._flatten_layers(include_self=False, recursive=False))


def layer_paths(model) -> dict[str, keras.layers.Layer]:
    """Every layer inside ``model`` by its path, depth first in model order, each layer once.

    A path is the layer's name below the containers holding it, e.g. ``conv`` at the top
    and ``tower_a/conv`` inside the sub-model ``tower_a`` or ``td/conv`` inside a
    ``TimeDistributed`` named ``td``; the model's own name is left out. Two layers that
    would share a path (equally named parts of one custom layer) get ``#2``, ``#3`` … in
    model order. A layer used in several places (shared weights) appears once, at its
    first path.
    """
    paths: dict[str, keras.layers.Layer] = {}
    seen = {id(model)}

    def walk(container, prefix: str) -> None:
        for layer in _sublayers(container):
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            path = base = f"{prefix}{layer.name}"
            copies = 1
            while path in paths:
                copies += 1
                path = f"{base}#{copies}"
            paths[path] = layer
            walk(layer, f"{path}/")

    walk(model, "")
    return paths


def conv_layer_paths(model) -> dict[str, keras.layers.Conv2D]:
    """``{path: layer}`` of every Conv2D (``MicroConv2D`` included) however deeply nested, in model order.

    Paths are those of ``layer_paths``; every mask and per-layer result is keyed by them.
    PsykError when one of them is not built.
    """
    layers = {path: layer for path, layer in layer_paths(model).items() if isinstance(layer, keras.layers.Conv2D)}
    unbuilt = [path for path, layer in layers.items() if not layer.built]
    if unbuilt:
        raise PsykError(f"model {model.name!r} is not built (Conv2D {unbuilt[0]!r} has no weights yet)")
    return layers


def conv_layers(model) -> list[keras.layers.Conv2D]:
    """The model's Conv2D layers (``MicroConv2D`` included) in model order: ``conv_layer_paths`` without the paths."""
    return list(conv_layer_paths(model).values())


def effective_kernel(layer) -> np.ndarray:
    """The (kh, kw, C_in, C_out) kernel ``layer`` convolves with, as NumPy.

    Its kernel variable, or with LoRA on what Keras computes from it (``layer.kernel``):
    ``kernel + (lora_alpha / lora_rank) * lora_kernel_a @ lora_kernel_b``, A of shape
    (kh, kw, C_in, rank) and B (rank, C_out); on a ``MicroConv2D`` with its dead kernels zero.
    """
    return keras.ops.convert_to_numpy(layer.kernel)


def _kernel_variable(layer):
    # Keras 3 keeps a convolution's kernel variable in ``_kernel``; ``kernel`` is a property,
    # a computed tensor (no ``assign``) when LoRA is on.
    return layer._kernel


def _kernel_weights(layer) -> list:
    """The variables the effective kernel is computed from: the kernel and, with LoRA on, its factors."""
    lora = [layer.lora_kernel_a, layer.lora_kernel_b] if layer.lora_enabled else []
    return [_kernel_variable(layer), *lora]


def _kernel_writes(layer, kernel: np.ndarray) -> list[tuple[object, np.ndarray]]:
    """``[(variable, value)]`` making ``kernel`` the layer's effective kernel.

    With LoRA on the factors are merged: ``kernel`` goes into the kernel variable and
    ``lora_kernel_b`` becomes zero, so A·B adds nothing (LoRA stays on, as freshly
    enabled, and the zeroed kernels are zero in what the layer convolves with).
    """
    writes = [(_kernel_variable(layer), kernel)]
    if layer.lora_enabled:
        writes.append((layer.lora_kernel_b, np.zeros(layer.lora_kernel_b.shape, dtype=np.float32)))
    return writes


def has_lora(model) -> bool:
    return any(isinstance(layer, keras.layers.Conv2D) and layer.lora_enabled for layer in layer_paths(model).values())


def _layer_mask(layer) -> np.ndarray:
    if isinstance(layer, MicroConv2D):
        return np.array(keras.ops.convert_to_numpy(layer.kernel_mask), dtype=np.float32)
    return np.any(effective_kernel(layer) != 0, axis=(0, 1)).astype(np.float32)


def _masked(kernel: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``kernel`` (kh, kw, C_in, C_out) with the dead kernels zeroed and every other bit kept.

    NumPy, not a backend multiplication, which may flush subnormal weights to zero.
    """
    return np.where(np.asarray(mask)[None, None] != 0, kernel, np.zeros((), kernel.dtype))


def _write_conv(layer, kernel: np.ndarray, mask: np.ndarray, optimizer=None) -> None:
    """Store ``kernel`` with the kernels dead in ``mask`` zeroed (LoRA merged), and the mask on a ``MicroConv2D``;
    the dead kernels' slots in ``optimizer`` are zeroed too (``optimizer_slots``)."""
    writes = _kernel_writes(layer, _masked(kernel, mask))
    if optimizer is not None:
        writes += [(slot, _masked(np.asarray(keras.ops.convert_to_numpy(slot)), mask))
                   for slot in optimizer_slots(optimizer, _kernel_variable(layer))]
    _assign(writes)
    if isinstance(layer, MicroConv2D):
        layer.kernel_mask.assign(np.asarray(mask, dtype=np.float32))


def optimizer_slots(optimizer, variable) -> list:
    """The per-weight state ``optimizer`` keeps for ``variable``: SGD's momentum, Adam's first and
    second moments, RMSprop's and Adagrad's accumulators (each the variable's shape).

    A Keras 3 optimizer names such a slot ``<variable path with / as _>_<slot>``
    (``add_variable_from_reference``). Empty before the optimizer is built.
    """
    prefix = variable.path.replace("/", "_") + "_"
    shape = tuple(variable.shape)
    return [slot for slot in getattr(optimizer, "variables", ())
            if slot.name.startswith(prefix) and tuple(slot.shape) == shape]


def get_masks(model) -> dict[str, np.ndarray]:
    """``{layer path: (C_in, C_out) float32 0/1}``: the mask weight, or for a plain Conv2D "kernel not all zero"."""
    return {path: _layer_mask(layer) for path, layer in conv_layer_paths(model).items()}


def set_masks(model, masks: Mapping[str, np.ndarray]) -> None:
    """Apply ``masks`` (keyed by layer path; a subset is fine) monotonely: alive where old AND new are alive.

    The stored kernel weights of dead kernels become exactly zero (a saved model shows
    them), the others keep every bit, and ``MicroConv2D`` mask weights are updated. With a
    compiled model, the dead kernels' optimizer slots (momentum, moments) are zeroed as
    well: their gradient is zero, so no optimizer step moves them again. A
    layer with LoRA on gets its effective kernel, masked, as its kernel, and B = 0.
    PsykError for a path that is no Conv2D or a mask of the wrong shape.
    """
    layers = conv_layer_paths(model)
    unknown = sorted(set(masks) - set(layers))
    if unknown:
        raise PsykError(
            f"no Conv2D layer named {', '.join(map(repr, unknown))} in model {model.name!r}; "
            f"its Conv2D layers are named by their path, e.g. {next(iter(layers), 'none')!r}"
        )
    for path, mask in masks.items():
        layer = layers[path]
        current = _layer_mask(layer)
        requested = np.asarray(mask)
        if requested.shape != current.shape:
            raise PsykError(f"mask for layer {path!r} has shape {requested.shape}, expected {current.shape}")
        _write_conv(layer, effective_kernel(layer), np.minimum(current, (requested != 0).astype(np.float32)),
                    getattr(model, "optimizer", None))


def mask_weight_ids(layers) -> set[int]:
    return {id(layer.kernel_mask) for layer in layers if isinstance(layer, MicroConv2D)}


def _size(weight) -> int:
    return math.prod(weight.shape)


def parameter_report(model, masks: Mapping[str, np.ndarray] | None = None) -> dict:
    """Active and total parameters per Conv2D layer (``"layer"``: its path) and for the whole model.

    A layer's active parameters are all its parameters minus ``kh*kw`` per dead kernel;
    model totals count every weight (BN moving statistics included, masks excluded);
    ``compression_ratio = 1 - active/total``. ``masks`` overrides the model's own masks
    for the layers it names (to report a mask set without applying it). LoRA factors
    are parameters of their layer: counted in its total and active parameters, never
    removed by a dead kernel (they serve every kernel of the layer).
    """
    layers = conv_layer_paths(model)
    masks = {**get_masks(model), **(masks or {})}
    mask_ids = mask_weight_ids(layers.values())
    rows = []
    for path, layer in layers.items():
        mask = masks[path]
        kernel_h, kernel_w = _kernel_shape(layer)
        layer_params = sum(_size(w) for w in layer.weights if id(w) not in mask_ids)
        alive = int(np.count_nonzero(mask))
        rows.append(
            {
                "layer": path,
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


def _kernel_shape(layer) -> tuple[int, int]:
    return tuple(_kernel_variable(layer).shape[:2])


def skipped_layers(model, mode: str) -> dict[str, str]:
    """``{path: why}`` of the Conv2D layers ``mode`` cannot prune and leaves intact.

    Only eigenvalue and determinant modes skip layers: those with non-square kernels
    (InceptionV3's 1×7 and 7×1), which have no eigenvalues.
    """
    spec = get_mode(mode)
    return {
        path: f"{'×'.join(map(str, _kernel_shape(layer)))} kernels: {mode} needs square ones"
        for path, layer in conv_layer_paths(model).items()
        if not spec.applies_to(_kernel_shape(layer))
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
    """``{path: mask}``: the masks ``mode`` would leave on the Conv2D layers it prunes; nothing is applied.

    Layers the mode cannot prune (``skipped_layers``) are left out and keep their masks.
    Random modes draw from ``rng``, else from ``numpy.random.default_rng(seed)`` with
    seed 0 when ``seed`` is None, so the same model and arguments give the same masks.
    One generator serves all layers in model order. ``statistics`` (from
    ``layer_statistics``) lets several modes share one computation on unchanged kernels.
    PsykError for bad parameters, a model without a Conv2D or without one the mode
    applies to, and NaN or infinite weights in any Conv2D (naming its path).
    """
    spec = get_mode(mode)
    validate_pruning_parameters(threshold, contribution_threshold, rate)
    layers = conv_layer_paths(model)
    if not layers:
        raise PsykError(f"model {model.name!r} has no Conv2D layer to prune")
    skipped = skipped_layers(model, mode)
    for path in skipped:
        require_finite(effective_kernel(layers[path]), path)  # refused like every other layer, though not pruned
    if len(skipped) == len(layers):
        shapes = sorted({"×".join(map(str, _kernel_shape(layer))) for layer in layers.values()})
        raise PsykError(
            f"{mode} needs square kernels, but no Conv2D of model {model.name!r} has them "
            f"({', '.join(shapes)}); spectral_norm and weight modes apply to any kernel"
        )
    if rng is None:
        rng = np.random.default_rng(0 if seed is None else seed)
    return {
        path: prune_mask(
            spec,
            effective_kernel(layer),
            _layer_mask(layer),
            threshold=threshold,
            contribution_threshold=contribution_threshold,
            rate=rate,
            rng=rng,
            stats=None if statistics is None else statistics[path],
            layer=path,
        )
        for path, layer in layers.items()
        if path not in skipped
    }


def layer_statistics(model) -> dict[str, KernelStatistics]:
    """Lazy statistics of every Conv2D's effective kernels, keyed by layer path; valid while they are unchanged."""
    return {
        path: kernel_statistics(layer_kernels(effective_kernel(layer)), layer=path)
        for path, layer in conv_layer_paths(model).items()
    }


def prune_model(
    model,
    mode: str,
    threshold: float = DEFAULT_THRESHOLD,
    contribution_threshold: float = DEFAULT_CONTRIBUTION_THRESHOLD,
    rate: float = DEFAULT_RATE,
    seed: int | None = None,
) -> dict:
    """Kill the kernels ``mode`` marks (``compute_masks`` then ``set_masks``).

    Returns ``parameter_report`` plus ``"mode"`` and ``"skipped"``: the layers left
    intact, ``[{"layer": path, "kernel_shape": [kh, kw], "reason": why}]`` (see
    ``skipped_layers``).
    """
    masks = compute_masks(
        model, mode, threshold=threshold, contribution_threshold=contribution_threshold, rate=rate, seed=seed
    )
    set_masks(model, masks)
    layers = conv_layer_paths(model)
    skipped = [
        {"layer": path, "kernel_shape": list(_kernel_shape(layers[path])), "reason": why}
        for path, why in skipped_layers(model, mode).items()
    ]
    return {"mode": mode, **parameter_report(model), "skipped": skipped}


@contextlib.contextmanager
def trial_masks(model, paths=None):
    """Snapshot every conv kernel, its LoRA factors, its mask and its optimizer slots (``set_masks`` zeroes
    those of the kernels it kills); restore them exactly on exit (also on error).

    ``paths`` (layer paths) limits the snapshot to those layers, for a trial that changes only them.
    """
    layers = conv_layer_paths(model)
    layers = layers.values() if paths is None else [layers[path] for path in paths]
    optimizer = getattr(model, "optimizer", None)
    weights = [
        weight
        for layer in layers
        for weight in [
            *_kernel_weights(layer),
            *([layer.kernel_mask] if isinstance(layer, MicroConv2D) else []),
            *(optimizer_slots(optimizer, _kernel_variable(layer)) if optimizer is not None else []),
        ]
    ]
    saved = [(weight, np.array(keras.ops.convert_to_numpy(weight))) for weight in weights]
    try:
        yield model
    finally:
        _assign(saved)


_MICRO_CONV2D = keras.saving.get_registered_name(MicroConv2D)
_SWITCHABLE_L1 = keras.saving.get_registered_name(SwitchableL1)


def _rewritten_config(node, *, keep_masks: bool):
    """A serialized Keras config with LoRA off on every Conv2D (``lora_rank`` and ``lora_alpha`` dropped).

    Unless ``keep_masks``, also every ``MicroConv2D`` a ``Conv2D`` and every
    ``SwitchableL1`` a plain L1 keeping its current factor (none at 0). Walks the whole
    config, so layers inside sub-models, wrappers and composite layers are rewritten too.
    """
    if isinstance(node, list):
        return [_rewritten_config(item, keep_masks=keep_masks) for item in node]
    if not isinstance(node, dict):
        return node
    registered = node.get("registered_name")
    if registered == _SWITCHABLE_L1 and not keep_masks:
        factor = node["config"]["l1"]
        return {"module": "keras.regularizers", "class_name": "L1", "config": {"l1": factor}, "registered_name": None}
    built_in_conv = node.get("module") == "keras.layers" and node.get("class_name") == "Conv2D"
    if registered == _MICRO_CONV2D or built_in_conv:
        lora = ("lora_rank", "lora_alpha")
        node = {**node, "config": {key: value for key, value in node["config"].items() if key not in lora}}
        if not keep_masks:
            node = {**node, "module": "keras.layers", "class_name": "Conv2D", "registered_name": None}
    return {key: _rewritten_config(value, keep_masks=keep_masks) for key, value in node.items()}


def _rewritten_copy(model, *, keep_masks: bool) -> keras.Model:
    """A copy of ``model`` built from ``_rewritten_config``, every weight copied by ``_weight_plan``."""
    config = keras.saving.serialize_keras_object(model)
    config.pop("compile_config", None)
    # The config is that of a model already in memory, not a file's: its Lambda layers are trusted.
    copy = keras.saving.deserialize_keras_object(_rewritten_config(config, keep_masks=keep_masks), safe_mode=False)
    # The copy has the same structure, so its layers pair with the original's in order,
    # even those whose names Keras generates anew (parts of a custom layer).
    originals, copies = layer_paths(model), list(layer_paths(copy).values())
    if len(originals) != len(copies):
        raise PsykError(f"model {model.name!r} does not survive a round trip through its Keras config")
    _assign(_weight_plan([("", model, copy), *zip(originals, originals.values(), copies)], "the model", "its copy"))
    return copy


def strip_masks(model) -> keras.Model:
    """A plain Keras copy: every Conv2D a ``keras.layers.Conv2D`` with dead kernels zeroed, no masks, no LoRA.

    Works on any model Keras can serialize (Functional, Sequential, subclassed), with
    the convolutions nested at any depth; only a ``MicroConv2D`` that a custom layer or
    subclassed model creates itself, outside its config, stays masked. ``SwitchableL1`` becomes
    ``keras.regularizers.L1`` with its current factor (none at 0). A Conv2D with LoRA on
    becomes one with LoRA off whose kernel is the effective kernel (``merge_lora``).
    Every other weight, and every weight of a surviving kernel, is copied bit for bit,
    so predictions are identical and the saved file loads with
    ``keras.models.load_model`` alone. The copy is not compiled.
    """
    return _rewritten_copy(model, keep_masks=False)


def merge_lora(model) -> keras.Model:
    """A copy of ``model`` with LoRA off on every Conv2D, each kernel the effective one; ``model`` if none has LoRA.

    The factors are merged, not dropped: predictions are identical and the copy's
    dead kernels are zero. Everything else stays, ``MicroConv2D`` masks included, so a
    masked layer keeps its mask semantics with nothing trainable outside the mask.
    Only a Conv2D subclass of another package keeps LoRA on (merged, B = 0), and
    LoRA on other layers (Dense) is left as it is. The copy is not compiled.
    """
    return _rewritten_copy(model, keep_masks=True) if has_lora(model) else model


def own_weights(layer) -> list:
    """The weights ``layer`` holds itself, not through the layers it contains."""
    inner = {id(weight) for sublayer in _sublayers(layer) for weight in sublayer.weights}
    return [weight for weight in layer.weights if id(weight) not in inner]


def _weight_name(weight) -> str:
    return weight.name.rsplit("/", 1)[-1]


def _weight_plan(pairs, source_label: str, target_label: str) -> list[tuple[object, np.ndarray]]:
    """``[(target weight, value)]`` copying each ``(path, source layer, target layer)``; PsykError on a mismatch.

    A Conv2D copies into any Conv2D with its mask: from a ``MicroConv2D``'s mask weight
    or from a plain Conv2D's all-zero kernels, so the target's dead kernels are zero
    and, on a ``MicroConv2D``, masked. What is copied is the effective kernel, so LoRA
    factors are merged on either side (``_kernel_writes``). Nothing is assigned yet.
    """
    plan = []
    for path, source, target in pairs:
        where = f"layer {path!r}" if path else "the model"
        both_conv = isinstance(source, keras.layers.Conv2D) and isinstance(target, keras.layers.Conv2D)
        if not both_conv and type(source).__name__ != type(target).__name__:
            raise PsykError(
                f"{where} is a {type(source).__name__} in {source_label}, a {type(target).__name__} in {target_label}"
            )
        skip = set()
        if both_conv:
            skip = {id(weight) for conv in (source, target) for weight in _kernel_weights(conv)}
            skip |= mask_weight_ids([source, target])
            kernel, mask = effective_kernel(source), _layer_mask(source)
            _check_shape(where, "kernel", kernel.shape, _kernel_variable(target).shape, source_label, target_label)
            plan.extend(_kernel_writes(target, _masked(kernel, mask)))
            if isinstance(target, MicroConv2D):
                plan.append((target.kernel_mask, mask))
        sources = [w for w in own_weights(source) if id(w) not in skip]
        targets = [w for w in own_weights(target) if id(w) not in skip]
        if len(sources) != len(targets):  # names may differ: Keras numbers unnamed weights per process
            raise PsykError(
                f"{where} has the weights {', '.join(map(_weight_name, sources)) or 'none'} in {source_label}, "
                f"{', '.join(map(_weight_name, targets)) or 'none'} in {target_label}"
            )
        for source_weight, target_weight in zip(sources, targets):
            name = _weight_name(target_weight)
            _check_shape(where, name, source_weight.shape, target_weight.shape, source_label, target_label)
            plan.append((target_weight, keras.ops.convert_to_numpy(source_weight)))
    return plan


def _check_shape(where: str, name: str, source, target, source_label: str, target_label: str) -> None:
    if tuple(source) != tuple(target):
        raise PsykError(
            f"{where}: {name} of shape {tuple(source)} in {source_label}, {tuple(target)} in {target_label}"
        )


def _assign(plan) -> None:
    for weight, value in plan:
        weight.assign(value)


def _named_list(names: list[str], shown: int = 3) -> str:
    listed = ", ".join(names[:shown])
    return listed if len(names) <= shown else f"{listed} and {len(names) - shown} more"


def transfer_weights(source, target, *, source_label: str = "the source", target_label: str = "the target") -> None:
    """Copy every weight of ``source`` into the layer at the same path in ``target`` (``layer_paths``).

    For warm starts: a plain pruned model (``psyk prune`` output) into our masked
    ResNet gives masks whose dead kernels are the all-zero ones; a ``MicroConv2D``
    passes its mask on. Only layers holding weights are matched. Nothing is written
    unless everything matches: PsykError naming the layers missing on either side,
    or the first layer whose type or weight shapes differ (``*_label`` name the models
    in the messages).
    """
    def weighted(model):
        return {path: layer for path, layer in layer_paths(model).items() if own_weights(layer)}

    sources, targets = weighted(source), weighted(target)
    missing = [path for path in targets if path not in sources]
    if missing:
        raise PsykError(f"layers missing from {source_label}: {_named_list(missing)}")
    extra = [path for path in sources if path not in targets]
    if extra:
        raise PsykError(f"layers in {source_label} but not in {target_label}: {_named_list(extra)}")
    pairs = [(path, sources[path], layer) for path, layer in targets.items()]
    if own_weights(source) or own_weights(target):
        pairs.append(("", source, target))
    _assign(_weight_plan(pairs, source_label, target_label))


def set_l1_penalty(model, value: float) -> None:
    """Set the factor of every ``SwitchableL1`` on the model's conv kernels (0 switches the penalty off).

    A model built without an L1 penalty accepts 0 (nothing to switch off) and refuses
    a positive value. The next ``fit`` trains with the new factor on every backend.
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
    refresh_compiled_steps(model)


_UNKNOWN_CLASS = re.compile(r"Could not (?:locate|deserialize) (?:class|function) '([^']+)'")
_CONFIG_DUMP = re.compile(r"\s*(?:Full object config:|config=).*", re.DOTALL)
_REASON_LENGTH = 160


def _config_module(path: Path, class_name: str) -> str | None:
    """The ``module`` the model file records for ``class_name`` (None when absent or unreadable)."""
    def find(node):
        if isinstance(node, dict):
            if node.get("class_name") == class_name:
                return node.get("module") or ""
            nodes = node.values()
        elif isinstance(node, list):
            nodes = node
        else:
            return None
        return next((found for found in map(find, nodes) if found is not None), None)

    try:
        with zipfile.ZipFile(path) as archive:
            return find(json.loads(archive.read("config.json")))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def _load_failure(path: Path, exc: Exception) -> str:
    """One short line on why Keras could not load ``path``: the unknown class and the way out, or the first reason.

    Keras puts the cause of a failed deserialization deep in its message, after the
    whole object config; the config is never repeated here.
    """
    chain, cause = [], exc
    while cause is not None and len(chain) < 10:
        chain.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    unknown = _UNKNOWN_CLASS.search("\n".join(chain))
    if unknown:
        name = unknown.group(1)
        module = _config_module(path, name)
        origin = f" from module {module}" if module else " from the script that saved it" if module == "" else ""
        return (
            f"cannot read Keras model {path}: it uses the custom class {name!r}{origin}, which psyk cannot import; "
            "save the model with built-in Keras layers only, or prune it from Python with that class imported "
            "(psykedelic_cli.pruning.prune_model)"
        )
    lines = _CONFIG_DUMP.sub("", chain[0]).strip().splitlines()
    reason = lines[0] if lines else type(exc).__name__
    if len(reason) > _REASON_LENGTH:
        reason = reason[: _REASON_LENGTH - 1].rstrip() + "…"
    return f"cannot read Keras model {path}: {reason}"


def load_model(path) -> keras.Model:
    """A ``.keras`` model file (ours or plain Keras), uncompiled.

    PsykError when the file is missing or unreadable, in one short line; a custom class
    psyk cannot import is named with what to do about it.
    """
    path = Path(path)
    if not path.is_file():
        raise PsykError(f"model file not found: {path}")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types (ValueError, TypeError, OSError, zipfile errors, …)
        raise PsykError(_load_failure(path, exc)) from exc


def save_model(model, path, *, keep_masks: bool = False) -> None:
    """Write ``model`` to a ``.keras`` file: plain Keras (``strip_masks``) unless ``keep_masks``.

    Either way no Conv2D in the file has LoRA on: its factors are merged into its kernel
    (``merge_lora``). The file is written whole or not at all (a temporary file renamed
    over ``path``).
    """
    from psykedelic_cli.outputs import replacing

    path = Path(path)
    if path.suffix != ".keras":
        raise PsykError(f"a model is saved as a .keras file, got {path}")
    saved = merge_lora(model) if keep_masks else strip_masks(model)
    with replacing(path) as temporary:
        saved.save(temporary)
