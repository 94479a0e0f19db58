"""kernel_statistics against numpy.linalg, on random kernels and on the hard cases."""

from __future__ import annotations

import numpy as np
import pytest

from psykedelic_cli.errors import PsykError
from psykedelic_cli.pruning import statistics
from psykedelic_cli.pruning.statistics import STATISTICS, kernel_statistics

EPS = np.finfo(np.float64).eps


def reference(kernels: np.ndarray) -> dict[str, np.ndarray]:
    """The statistics straight from numpy.linalg, for a stack (m, k, k)."""
    eigenvalues = np.linalg.eigvals(kernels)
    return {
        "det": np.linalg.det(kernels),
        "det_corr": np.linalg.det(np.swapaxes(kernels, 1, 2) @ kernels),
        "min_eig": np.abs(eigenvalues).min(axis=1),
        "min_eig_real": np.abs(eigenvalues.real).min(axis=1),
        "spectral_radius": np.abs(eigenvalues).max(axis=1),
        "spectral_radius_real": np.abs(eigenvalues.real).max(axis=1),
        "spectral_norm": np.linalg.norm(kernels, 2, axis=(1, 2)),
        "weight": np.abs(kernels).mean(axis=(1, 2)),
    }


def degree(name: str, k: int) -> int:
    """How the statistic scales with the kernel: det ~ sᵏ, det_corr ~ s²ᵏ, the rest ~ s."""
    return {"det": k, "det_corr": 2 * k}.get(name, 1)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("magnitude", [1e-8, 1e-4, 1.0, 1e3])
def test_random_kernels_agree_with_numpy_linalg(k, magnitude):
    kernels = np.random.default_rng(k).standard_normal((1500, k, k)) * magnitude
    stats = kernel_statistics(kernels)
    expected = reference(kernels)
    largest = np.abs(kernels).max(axis=(1, 2))
    assert list(stats) == list(STATISTICS)
    for name in STATISTICS:
        # 1e-6 relative, plus an absolute slack of 1e-9 of the kernel's scale for values
        # near 0 (a tiny eigenvalue of a unit kernel is only known to ~eps from LAPACK too).
        slack = 1e-9 * largest ** degree(name, k)
        np.testing.assert_array_less(np.abs(stats[name] - expected[name]), 1e-6 * np.abs(expected[name]) + slack)
    lapack_complex = (np.abs(np.linalg.eigvals(kernels).imag) > 0).sum(axis=1)
    np.testing.assert_array_equal(stats.n_complex_eigenvalues, lapack_complex)


@pytest.mark.parametrize("magnitude", [1e-300, 1e300])
def test_extreme_magnitudes_neither_overflow_nor_underflow(magnitude):
    # The closed forms work on kernels scaled by a power of two, so p³ or q² never leave
    # float64 even when the kernel's own statistics are near its limits.
    kernels = np.random.default_rng(11).standard_normal((200, 3, 3)) * magnitude
    stats = kernel_statistics(kernels)
    with np.errstate(all="ignore"):  # numpy's det of KᵀK overflows there; we do not compare it
        expected = reference(kernels)
    for name in ("min_eig", "min_eig_real", "spectral_radius", "spectral_radius_real", "spectral_norm", "weight"):
        np.testing.assert_allclose(stats[name], expected[name], rtol=1e-6, atol=1e-9 * magnitude)
    assert stats.n_complex_eigenvalues.sum() == (np.abs(np.linalg.eigvals(kernels).imag) > 0).sum()


def test_det_corr_is_the_square_of_det_and_det_gram_its_alias():
    kernels = np.random.default_rng(7).standard_normal((100, 3, 3))
    stats = kernel_statistics(kernels, ["det_gram", "det"])
    assert list(stats) == ["det_corr", "det"]
    np.testing.assert_allclose(stats["det_gram"], stats["det"] ** 2, rtol=1e-15)
    assert stats["det_gram"] is stats["det_corr"]


def rotation_3d(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def similar(matrix: np.ndarray, seed: int) -> np.ndarray:
    """S·M·S⁻¹ for a well-conditioned random S: same eigenvalues, dense entries."""
    basis = np.linalg.qr(np.random.default_rng(seed).standard_normal(matrix.shape))[0] + 2 * np.eye(len(matrix))
    return basis @ matrix @ np.linalg.inv(basis)


# (kernel, the exact statistics (det, min_eig, min_eig_real, spectral_radius,
#  spectral_radius_real, spectral_norm), number of complex eigenvalues)
HARD_CASES = {
    "zero": (np.zeros((3, 3)), (0, 0, 0, 0, 0, 0), 0),
    "identity": (np.eye(3), (1, 1, 1, 1, 1, 1), 0),
    "tiny identity": (5e-7 * np.eye(3), (1.25e-19, 5e-7, 5e-7, 5e-7, 5e-7, 5e-7), 0),
    "rotation": (rotation_3d(0.7), (1, 1, np.cos(0.7), 1, 1, 1), 2),
    "scaled rotation": (  # λ = 2e^{±2i} (|Re λ| = 2|cos 2| = 0.83) and 0.5
        np.diag([2.0, 2.0, 0.5]) @ rotation_3d(2.0),
        (2.0, 0.5, 0.5, 2.0, 2 * abs(np.cos(2.0)), 2.0),
        2,
    ),
    "jordan block": (np.array([[2.0, 1, 0], [0, 2, 1], [0, 0, 2]]), (8, 2, 2, 2, 2, None), 0),
    "nilpotent": (np.array([[0.0, 1, 0], [0, 0, 1], [0, 0, 0]]), (0, 0, 0, 0, 0, 1), 0),
    "repeated real eigenvalue": (similar(np.diag([1.0, 1.0, 3.0]), 1), (3, 1, 1, 3, 3, None), 0),
    "repeated negative eigenvalue": (similar(np.diag([-1.0, -1.0, 0.5]), 2), (0.5, 0.5, 0.5, 1, 1, None), 0),
    "three-cycle": (np.array([[0.0, 1, 0], [0, 0, 1], [1, 0, 0]]), (1, 1, 0.5, 1, 1, 1), 2),
    "2x2 rotation": (np.array([[0.0, -1], [1, 0]]), (1, 1, 0, 1, 0, 1), 2),
    "2x2 jordan": (np.array([[1.0, 1], [0, 1]]), (1, 1, 1, 1, 1, (1 + 5**0.5) / 2), 0),
    "1x1 negative": (np.array([[-0.25]]), (-0.25, 0.25, 0.25, 0.25, 0.25, 0.25), 0),
    "1x1 zero": (np.array([[0.0]]), (0, 0, 0, 0, 0, 0), 0),
}


@pytest.mark.parametrize("case", HARD_CASES)
def test_hard_cases(case):
    kernel, exact, n_complex = HARD_CASES[case]
    stats = kernel_statistics(kernel[None])
    names = ("det", "min_eig", "min_eig_real", "spectral_radius", "spectral_radius_real", "spectral_norm")
    # Repeated eigenvalues are ill-conditioned (for LAPACK as well): a perturbation of
    # eps moves a double root by ~sqrt(eps), so compare to sqrt(eps)·‖K‖ there.
    tolerance = 8 * np.sqrt(EPS) * max(np.abs(kernel).max(), 1e-300)
    for name, value in zip(names, exact):
        if value is not None:
            assert stats[name][0] == pytest.approx(value, rel=1e-12, abs=tolerance), name
    np.testing.assert_allclose(stats["spectral_norm"], np.linalg.norm(kernel, 2), rtol=1e-8)
    np.testing.assert_allclose(stats["det_corr"], stats["det"] ** 2)
    assert stats.n_complex_eigenvalues[0] == n_complex


def test_repeated_roots_are_not_complex_from_round_off():
    # Symmetric kernels have real eigenvalues; with a double eigenvalue the computed
    # discriminant is ±round-off, and its sign alone would call half of them complex.
    rotations = np.linalg.qr(np.random.default_rng(3).standard_normal((2000, 3, 3)))[0]
    for eigenvalues in ([1.0, 1.0, 3.0], [0.0, 0.0, 1.0], [-1.0, -1.0, 0.5], [2.0, 2.0, 2.0]):
        kernels = rotations @ np.diag(eigenvalues) @ np.swapaxes(rotations, 1, 2)
        stats = kernel_statistics(kernels)
        assert stats.n_complex_eigenvalues.max() == 0, eigenvalues
        np.testing.assert_allclose(stats["min_eig"], min(np.abs(eigenvalues)), atol=1e-7)
        np.testing.assert_allclose(stats["spectral_radius"], max(np.abs(eigenvalues)), rtol=1e-7)


def block_kernel(pair_real: float, pair_imag: float, real: float, seed: int = 0) -> np.ndarray:
    """A dense 3×3 kernel with eigenvalues pair_real ± i·pair_imag and ``real``."""
    block = np.array([[pair_real, -pair_imag, 0.0], [pair_imag, pair_real, 0.0], [0.0, 0.0, real]])
    return similar(block, seed)


@pytest.mark.parametrize(
    ("pair_real", "pair_imag", "real", "deciding"),
    [
        # |pair| = 2.06, |Re pair| = 0.5, real 1: min|λ| real, min|Re λ| complex,
        # max|λ| complex, max|Re λ| real.
        (0.5, 2.0, 1.0, (False, True, True, False)),
        # |pair| = 0.32, |Re pair| = 0.3, real -2: the pair wins both minima.
        (0.3, 0.1, -2.0, (True, True, False, False)),
        # |pair| = 5.4, |Re pair| = 5, real 0.1: the pair wins both maxima.
        (-5.0, 2.0, 0.1, (False, False, True, True)),
        # a pair barely off the real axis is still complex
        (1.0, 1e-3, 3.0, (True, True, False, False)),
    ],
)
def test_deciding_eigenvalue_is_complex(pair_real, pair_imag, real, deciding):
    kernel = block_kernel(pair_real, pair_imag, real)
    stats = kernel_statistics(kernel[None])
    assert stats.n_complex_eigenvalues[0] == 2
    names = ("min_eig", "min_eig_real", "spectral_radius", "spectral_radius_real")
    assert tuple(bool(stats.deciding_complex[name][0]) for name in names) == deciding
    assert stats["min_eig"][0] == pytest.approx(min(abs(real), np.hypot(pair_real, pair_imag)), rel=1e-9)


def test_ties_between_a_real_and_a_complex_eigenvalue_go_to_the_real_one():
    # A rotation: eigenvalues 1 and e^{±iθ}, all of modulus 1.
    stats = kernel_statistics(similar(rotation_3d(1.0), 5)[None])
    assert not stats.deciding_complex["min_eig"][0]
    assert not stats.deciding_complex["spectral_radius"][0]
    assert stats.deciding_complex["min_eig_real"][0]  # |cos 1| = 0.54 < 1


def test_complex_decisions_without_real_eigenvalues_and_for_larger_kernels():
    two_by_two = kernel_statistics(np.array([[[0.0, -1.0], [1.0, 0.0]]]))
    assert all(flags[0] for flags in two_by_two.deciding_complex.values())
    # 4×4 and 5×5 go through LAPACK: two rotation blocks (+ a real 3) are 4 complex eigenvalues.
    rotation = np.array([[0.6, -0.8], [0.8, 0.6]])
    four = np.block([[rotation, np.zeros((2, 2))], [np.zeros((2, 2)), 2 * rotation]])
    five = np.zeros((5, 5))
    five[:4, :4], five[4, 4] = four, 3.0
    for kernel, largest_is_complex in ((four, True), (five, False)):
        stats = kernel_statistics(similar(kernel, 4)[None])
        assert stats.n_complex_eigenvalues[0] == 4
        assert stats.deciding_complex["min_eig"][0]
        assert stats.deciding_complex["spectral_radius"][0] == largest_is_complex
    # ... and a nearly double real eigenvalue that LAPACK returns as a tiny pair counts as real
    nearly_double = similar(np.diag([1.0, 1.0, 2.0, 3.0]), 6)
    assert kernel_statistics(nearly_double[None]).n_complex_eigenvalues[0] == 0


def test_one_by_one_kernels_are_their_absolute_value():
    values = np.array([-3.0, 0.0, 2e-9, 7.5])
    stats = kernel_statistics(values.reshape(4, 1, 1))
    np.testing.assert_array_equal(stats["det"], values)
    np.testing.assert_array_equal(stats["det_corr"], values**2)
    for name in ("min_eig", "min_eig_real", "spectral_radius", "spectral_radius_real", "spectral_norm", "weight"):
        np.testing.assert_array_equal(stats[name], np.abs(values))
    np.testing.assert_array_equal(stats.n_complex_eigenvalues, 0)


def test_batch_shape_is_kept_and_empty_stacks_work():
    kernels = np.random.default_rng(0).standard_normal((4, 5, 3, 3))
    stats = kernel_statistics(kernels)
    for name in STATISTICS:
        assert stats[name].shape == (4, 5)
    assert stats.n_complex_eigenvalues.shape == (4, 5)
    assert stats.deciding_complex["min_eig"].shape == (4, 5)
    np.testing.assert_allclose(stats["det"], np.linalg.det(kernels), rtol=1e-9, atol=1e-12)
    empty = kernel_statistics(np.zeros((0, 3, 3)))
    assert all(empty[name].shape == (0,) for name in STATISTICS)
    assert empty.n_complex_eigenvalues.shape == (0,)


def test_non_square_kernels_get_spectral_norm_and_weight_only():
    kernels = np.random.default_rng(1).standard_normal((50, 1, 3))
    stats = kernel_statistics(kernels)
    assert list(stats) == ["spectral_norm", "weight"]
    np.testing.assert_allclose(stats["spectral_norm"], np.linalg.norm(kernels, 2, axis=(1, 2)), rtol=1e-12)
    np.testing.assert_allclose(stats["weight"], np.abs(kernels).mean(axis=(1, 2)))
    wide = np.random.default_rng(2).standard_normal((20, 2, 5))
    wide_norms = kernel_statistics(wide, ["spectral_norm"])["spectral_norm"]
    np.testing.assert_allclose(wide_norms, np.linalg.norm(wide, 2, axis=(1, 2)))


@pytest.mark.parametrize("name", ["det", "det_gram", "min_eig", "spectral_radius_real"])
def test_eigenvalue_statistics_of_non_square_kernels_are_refused(name):
    with pytest.raises(PsykError) as error:
        kernel_statistics(np.ones((4, 1, 3)), [name, "weight"], layer="conv_1x3")
    message = str(error.value)
    assert "conv_1x3" in message and "1×3" in message and "spectral_norm and weight" in message
    with pytest.raises(PsykError, match="square"):
        kernel_statistics(np.ones((4, 1, 3))).n_complex_eigenvalues


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_name_the_layer(bad):
    kernels = np.ones((3, 3, 3))
    kernels[1, 2, 0] = bad
    with pytest.raises(PsykError, match="layer 'conv2d_3' has NaN or infinite weights"):
        kernel_statistics(kernels, ["weight"], layer="conv2d_3")


def test_unknown_statistic_is_refused():
    with pytest.raises(PsykError, match="unknown statistic 'trace'; choose from: det, det_corr"):
        kernel_statistics(np.ones((1, 3, 3)), ["trace"])


def test_values_are_computed_lazily(monkeypatch):
    def no_eigenvalues(*args):
        raise AssertionError("eigenvalues computed although only weight and spectral_norm were read")

    monkeypatch.setattr(statistics, "_spectrum_3x3", no_eigenvalues)
    stats = kernel_statistics(np.random.default_rng(0).standard_normal((10, 3, 3)))
    assert stats["weight"].shape == (10,) and stats["spectral_norm"].shape == (10,)
    with pytest.raises(AssertionError):
        stats["min_eig"]


def test_the_mapping_is_read_only():
    stats = kernel_statistics(np.random.default_rng(0).standard_normal((6, 3, 3)))
    with pytest.raises(ValueError):
        stats["det"][0] = 1.0
    with pytest.raises(TypeError):
        stats["det"] = np.zeros(6)  # type: ignore[index]
    assert len(stats) == 8 and "weight" in stats and "det_gram" not in list(stats)
    with pytest.raises(KeyError):
        kernel_statistics(np.ones((2, 3, 3)), ["weight"])["det"]


def test_float32_keras_kernels_in_their_own_layout():
    keras_kernel = np.random.default_rng(9).standard_normal((3, 3, 16, 32)).astype(np.float32)
    stats = kernel_statistics(keras_kernel.transpose(2, 3, 0, 1))
    assert stats["det"].dtype == np.float64 and stats["det"].shape == (16, 32)
    np.testing.assert_allclose(
        stats["det"][5, 7], np.linalg.det(keras_kernel[:, :, 5, 7].astype(np.float64)), rtol=1e-9
    )
