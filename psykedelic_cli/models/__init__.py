"""Keras side of psykedelic: the masked convolution, the ResNet builders and model surgery.

Everything here imports Keras (and TensorFlow); the CLI imports it only inside the
commands that need it. The names below load their module on first use, so importing
``psykedelic_cli.models.layers`` alone does not pull in the pruning engine.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "layers": ("MicroConv2D", "SwitchableL1"),
    "resnet": ("build_micro_resnet", "model_name"),
    "surgery": (
        "compute_masks",
        "conv_layers",
        "effective_kernel",
        "get_masks",
        "load_model",
        "merge_lora",
        "parameter_report",
        "prune_model",
        "save_model",
        "set_l1_penalty",
        "set_masks",
        "strip_masks",
        "trial_masks",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
