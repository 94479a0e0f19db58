"""Hand-made kernels whose statistics are known, in the Keras Conv2D layout."""

from __future__ import annotations

import numpy as np
import pytest


def conv_kernel(neurons: list[list[np.ndarray]]) -> np.ndarray:
    """A Keras kernel (kh, kw, C_in, C_out) from ``neurons[c_out][c_in]`` = a kh×kw kernel."""
    return np.stack([np.stack(neuron, axis=-1) for neuron in neurons], axis=-1).astype(np.float64)


# One neuron of four alive 2×2 kernels and a dead one. With t = 0.1 (n = 2, so det
# is held to t² = 0.01 and det_corr to t⁴ = 1e-4) their statistics are:
#
#        |det|   |det KᵀK|  min|λ|  min|Reλ|  max|λ|  max|Reλ|  σ_max   mean|w|
#  K1    .015    2.25e-4    .05     .05       .3      .3        .3      .0875
#  K2    .0425   1.81e-3    .2062   .05       .2062   .05       .2062   .125     (λ = .05 ± .2i)
#  K3    4e-4    1.6e-7     .02     .02       .02     .02       .5008   .135     (Jordan block)
#  K4    .018    3.24e-4    .12     .12       .15     .15       .15     .0675    (det < 0)
#  K5    dead: strong weights that every rule would keep
K1 = np.diag([0.3, 0.05])
K2 = np.array([[0.05, -0.2], [0.2, 0.05]])
K3 = np.array([[0.02, 0.5], [0.0, 0.02]])
K4 = np.diag([0.15, -0.12])
K5 = np.diag([1.0, 1.0])

# A 3×3 kernel with a complex pair .05 ± .3i (|λ| = .3041) and a real eigenvalue .25:
# min|λ| = .25 (real decides), min|Reλ| = .05 (complex), max|λ| = .3041 (complex),
# max|Reλ| = .25 (real); det = .0925·.25 = .023125, mean|w| = .95/9 = .1056.
K6 = np.array([[0.05, -0.3, 0.0], [0.3, 0.05, 0.0], [0.0, 0.0, 0.25]])

# Two 1×3 kernels: σ_max = ‖row‖ and mean|w|; ODD2 is pruned by both at t = 0.1.
ODD1 = np.array([[0.5, 0.0, 0.0]])
ODD2 = np.array([[0.01, 0.02, 0.015]])


@pytest.fixture
def one_neuron():
    """(kernel (2, 2, 5, 1), mask (5, 1)) of K1..K5 with K5 dead."""
    mask = np.array([[1.0], [1.0], [1.0], [1.0], [0.0]])
    return conv_kernel([[K1, K2, K3, K4, K5]]), mask


@pytest.fixture
def analysis_layers(one_neuron):
    """Three layers: K1..K5 (K5 dead), K6 alone, and the non-square ODD1, ODD2."""
    return [
        ("conv_2x2", *one_neuron),
        ("conv_3x3", conv_kernel([[K6]]), np.ones((1, 1))),
        ("conv_1x3", conv_kernel([[ODD1], [ODD2]]), np.ones((1, 2))),
    ]
