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
    alive = ops.not_equal(mask, 0)[None, None, :, :]
    return ops.where(alive, kernel, ops.zeros_like(kernel))


class _MaskedKernel(keras.constraints.Constraint):
    """``masked_kernel(kernel, mask)`` after every optimizer step, then the user's own constraint.

    A dead kernel gets a zero gradient, but an optimizer with momentum (Adam, SGD with
    momentum) still moves it by its remembered velocity; re-applying the mask after
    each step keeps its stored weights exactly zero. Lives on the kernel variable only,
    never in the layer config: the layer rebuilds it at ``build``.
    """

    def __init__(self, mask, inner=None):
        self.mask = mask
        self.inner = inner

    def __call__(self, kernel):
        masked = masked_kernel(kernel, self.mask)
        return self.inner(masked) if self.inner is not None else masked


@keras.saving.register_keras_serializable(package=PACKAGE)
class MicroConv2D(keras.layers.Conv2D):
    """A Conv2D whose kernels can die one by one.

    Holds a non-trainable ``mask`` weight of shape ``(C_in / groups, C_out)`` (ones at
    first) and convolves with ``masked_kernel(kernel, mask)``: a dead kernel
    contributes exactly zero to the output and its weights get a zero gradient. The
    stored kernel weights of dead kernels are kept at exactly zero through training
    (see ``_MaskedKernel``). The config is the plain Conv2D config.

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
        self._kernel.constraint = _MaskedKernel(self.kernel_mask, self.kernel_constraint)
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
    rebuilding or recompiling the model.
    """

    def __init__(self, l1: float = 0.0):
        self.l1 = float(l1)
        self.penalty = keras.Variable(self.l1, dtype="float32", trainable=False, name="l1_penalty")

    def assign(self, l1: float) -> None:
        """Set the factor; takes effect at the next train step, compiled or not."""
        self.l1 = float(l1)
        self.penalty.assign(self.l1)

    def __call__(self, weights):
        return ops.multiply(ops.cast(self.penalty, weights.dtype), ops.sum(ops.abs(weights)))

    def get_config(self) -> dict:
        return {"l1": self.l1}
