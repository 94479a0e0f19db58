"""``--distribute``: data parallelism over the local accelerators, per backend."""

from __future__ import annotations

import contextlib

from psykedelic_cli.errors import PsykError

DISTRIBUTIONS = ("none", "mirrored")
"""``none``: one device; ``mirrored``: one replica per local device, gradients averaged."""


def check_distribution(name: str, backend: str) -> None:
    """PsykError (exit 2) when ``name`` is unknown or ``backend`` cannot distribute."""
    if name not in DISTRIBUTIONS:
        raise PsykError(f"--distribute {name!r}: choose one of {', '.join(DISTRIBUTIONS)}")
    if name == "mirrored" and backend == "torch":
        raise PsykError(
            "--distribute mirrored is not supported on the torch backend (Keras 3 has no data parallelism "
            "for PyTorch); use --backend jax or tensorflow, or --distribute none"
        )


def distribution_scope(name: str):
    """A context to build and compile the model in: TensorFlow's ``MirroredStrategy`` scope (``fit`` then
    follows the model's strategy). On JAX, Keras' ``DataParallel`` over every local device becomes the
    process's distribution (variables replicated, each batch split among the devices; ``fit`` reads it
    too) and the context is a no-op, as it is for ``none``."""
    import keras

    backend = keras.backend.backend()
    check_distribution(name, backend)
    if name == "none":
        return contextlib.nullcontext()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy().scope()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=keras.distribution.list_devices()))
    return contextlib.nullcontext()
