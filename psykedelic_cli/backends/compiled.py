"""When a model's compiled train/test/predict steps must be traced again."""

from __future__ import annotations


def refresh_compiled_steps(model) -> None:
    """After changing a value the compiled steps read but the model does not own (the factor of
    ``SwitchableL1``): on JAX such a variable is a constant of the traced step, so the steps are
    dropped and traced again at the next ``fit``/``evaluate``/``predict``. TensorFlow and PyTorch
    read the variable at every step: nothing to do.
    """
    import keras

    if keras.backend.backend() == "jax":
        model.train_function = model.test_function = model.predict_function = None
