"""``--seed``: one seed for Python, NumPy and the backend, and the backend's determinism switch."""

from __future__ import annotations

import os


def seed_everything(seed: int | None) -> None:
    """Seed Python, NumPy and the Keras backend (``keras.utils.set_random_seed``) and make the
    backend's kernels deterministic, so the same seed on the same backend repeats a run:
    TensorFlow's op determinism, PyTorch's deterministic algorithms (cuDNN benchmarking off),
    and on JAX XLA's deterministic GPU reductions (set before the first computation). No-op
    for ``None``.
    """
    if seed is None:
        return
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        if "--xla_gpu_deterministic_ops" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} --xla_gpu_deterministic_ops=true".strip()
    keras.utils.set_random_seed(seed)
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS refuses determinism without it
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
