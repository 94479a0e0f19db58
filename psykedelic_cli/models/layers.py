"""Keras objects saved inside our models: the masked convolution and the switchable L1 penalty.

Both are registered under the ``psykedelic`` package so a ``.keras`` file holding
them loads once this module is imported (``strip_masks`` turns a model into plain
Keras layers for readers without psykedelic).
"""

from __future__ import annotations

import keras
from keras import ops

PACKAGE = "psykedelic"


def masked_kernel(kernel, mask):
    """A (kh, kw, C_in, C_out) kernel with the kernels where ``mask`` (C_in, C_out) is 0 set to 0.

    A selection, not ``kernel * mask``: a multiplication runs under the backend's
    flush-to-zero (TensorFlow's on CPU) and turns subnormal weights of surviving
    kernels into 0, whereas this returns them bit for bit.
    """
    kernel = ops.convert_to_tensor(kernel)  # a Keras variable is no array to every backend's zeros_like
    alive = ops.not_equal(ops.convert_to_tensor(mask), 0)[None, None, :, :]
    return ops.where(alive, kernel, ops.zeros_like(kernel))


@keras.saving.register_keras_serializable(package=PACKAGE)
class MicroConv2D(keras.layers.Conv2D):
    """A Conv2D whose kernels can die one by one.

    Holds a non-trainable ``mask`` weight of shape ``(C_in / groups, C_out)`` (ones at
    first) and convolves with ``masked_kernel(kernel, mask)``: a dead kernel
    contributes exactly zero to the output and its weights get a zero gradient (and a
    zero L1 gradient, see ``SwitchableL1``). Killing kernels through
    ``psykedelic_cli.models.surgery.set_masks`` zeroes their stored weights and their
    optimizer slots (momentum, Adam's moments), so no optimizer moves them again: the
    stored weights of dead kernels stay exactly zero through training, on every backend,
    with no work in the train step. The config is the plain Conv2D config.

    With LoRA on, the kernel variable is frozen and the factors A and B train; no
    constraint on them can keep A·B zero on a dead kernel alone, so ``kernel`` (the
    effective kernel, base + scaled A·B) has the dead kernels selected out: they are
    exactly zero in it however A and B move, and so in a saved file.
    """

    def build(self, input_shape):
        # Conv2D.build enables LoRA (``lora_rank``) last and locks the layer's weights: the mask comes first.
        lora_rank, self.lora_rank = self.lora_rank, None
        super().build(input_shape)
        self.kernel_mask = self.add_weight(
            name="mask",
            shape=tuple(self._kernel.shape[2:]),
            initializer="ones",
            trainable=False,
            dtype="float32",
        )
        if lora_rank:
            self.enable_lora(lora_rank, lora_alpha=self.lora_alpha)

    @property
    def kernel(self):
        kernel = super().kernel
        return masked_kernel(kernel, self.kernel_mask) if self.lora_enabled else kernel

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, masked_kernel(kernel, self.kernel_mask))

    def _mask_key(self) -> str:
        # Conv2D stores kernel as "0" and bias as "1"; the mask follows them.
        return str(2 if self.use_bias else 1)

    def save_own_variables(self, store):
        super().save_own_variables(store)
        if self.built:
            store[self._mask_key()] = self.kernel_mask

    def load_own_variables(self, store):
        super().load_own_variables(store)
        if self.built:
            self.kernel_mask.assign(store[self._mask_key()])


@keras.saving.register_keras_serializable(package=PACKAGE)
class SwitchableL1(keras.regularizers.Regularizer):
    """L1 penalty ``penalty * sum(|w|)`` whose factor can change after compilation.

    The factor is a non-trainable variable read inside the compiled train step, so the
    trainer can switch the penalty off for the last stage (``set_l1_penalty``) without
    rebuilding or recompiling the model. Its gradient at a weight of exactly 0 is 0 on
    every backend (JAX's ``abs`` has gradient 1 there): a dead kernel's zero weights get
    no push from the penalty.
    """

    def __init__(self, l1: float = 0.0):
        self.l1 = float(l1)
        self.penalty = keras.Variable(self.l1, dtype="float32", trainable=False, name="l1_penalty")

    def assign(self, l1: float) -> None:
        """Set the factor. TensorFlow and PyTorch read it at the next step, compiled or not; on JAX it is a
        constant of the traced step, so set it through ``surgery.set_l1_penalty``, which has the steps traced again."""
        self.l1 = float(l1)
        self.penalty.assign(self.l1)

    def __call__(self, weights):
        weights = ops.convert_to_tensor(weights)
        magnitude = ops.where(ops.equal(weights, 0), ops.zeros_like(weights), ops.abs(weights))
        return ops.multiply(ops.cast(self.penalty, weights.dtype), ops.sum(magnitude))

    def get_config(self) -> dict:
        return {"l1": self.l1}
