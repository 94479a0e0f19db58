"""What a model is, for the store: a fingerprint of its architecture and its parameter count.

A Keras model's name says little (``functional`` and ``sequential`` are Keras' defaults for
every model), so runs are told apart by ``architecture``: a hash of the model's layer
structure — input and output shapes and, for every layer in model order (nested ones
included), its kind and the shapes of its weights. Layer names, weight values, psyk's
kernel masks and LoRA factors are left out, so a model keeps its fingerprint when it is
trained, renamed, pruned, saved with or without masks (``MicroConv2D`` counts as the
``Conv2D`` it is), merged from LoRA or loaded again. Reports never average runs whose
fingerprints differ.
"""

from __future__ import annotations

import hashlib
import json
import math

import keras

from psykedelic_cli.models.surgery import layer_paths, mask_weight_ids, own_weights

FINGERPRINT_LENGTH = 12
"""Hex digits kept of the SHA-256 (48 bits: a collision between two architectures of one store is negligible)."""


def _shapes(tensors) -> list:
    return [list(tensor.shape) for tensor in keras.tree.flatten(tensors)]


def _kind(layer) -> str:
    return "Conv2D" if isinstance(layer, keras.layers.Conv2D) else type(layer).__name__


def _weights(layer) -> list:
    """``layer``'s own weights (not those of the layers it holds), masks left out."""
    masks = mask_weight_ids([layer])
    return [w for w in own_weights(layer) if id(w) not in masks]


def _lora_factors(layer) -> set[int]:
    return {id(getattr(layer, name)) for name in ("lora_kernel_a", "lora_kernel_b")
            if getattr(layer, name, None) is not None}


def _shapes_without_lora(layer) -> list:
    factors = _lora_factors(layer)
    return [list(w.shape) for w in _weights(layer) if id(w) not in factors]


def model_identity(model) -> dict:
    """``{"architecture": fingerprint (12 hex digits), "params": every weight counted, masks excluded}``.

    The parameter count is ``parameter_report``'s ``total_params`` (LoRA factors included,
    though the fingerprint leaves them out). Needs a built model.
    """
    # Functional models list their InputLayer, Sequential ones do not: the input shapes say it once.
    layers = [layer for layer in layer_paths(model).values() if not isinstance(layer, keras.layers.InputLayer)]
    structure = {
        "inputs": _shapes(model.inputs) if getattr(model, "inputs", None) else None,
        "outputs": _shapes(model.outputs) if getattr(model, "outputs", None) else None,
        "layers": [[_kind(layer), _shapes_without_lora(layer)] for layer in layers],
    }
    text = json.dumps(structure, sort_keys=True, separators=(",", ":"))
    params = sum(math.prod(w.shape) for layer in [model, *layers] for w in _weights(layer))
    return {"architecture": hashlib.sha256(text.encode()).hexdigest()[:FINGERPRINT_LENGTH], "params": int(params)}
