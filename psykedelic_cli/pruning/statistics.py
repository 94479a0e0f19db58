"""Per-kernel matrix statistics, vectorised over every kernel of a layer at once.

For a square k×k kernel K with eigenvalues λ (SPEC.md "Per-kernel statistics"):

    det                   det K
    det_corr (det_gram)   det KᵀK = (det K)²
    min_eig               min |λ|
    min_eig_real          min |Re λ|
    spectral_radius       max |λ|
    spectral_radius_real  max |Re λ|
    spectral_norm         largest singular value of K (any kernel shape)
    weight                mean |K_ij| (any kernel shape)

1×1, 2×2 and 3×3 kernels use closed forms in float64 (the characteristic
polynomial and its discriminant), larger kernels batched ``numpy.linalg``.

An eigenvalue is *complex* when its imaginary part is non-zero in exact arithmetic:
for 2×2 kernels when tr² − 4det < 0, for 3×3 when the cubic's discriminant is < 0,
in both cases beyond the round-off of computing it (so a repeated real eigenvalue
is never called complex from noise); above 3×3 when LAPACK's |Im λ| exceeds
sqrt(eps)·‖K‖_F. Nothing here imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property, reduce

import numpy as np

from psykedelic_cli.errors import PsykError
from psykedelic_cli.pruning.vocabulary import BASE_CRITERIA, EIG_CRITERIA

STATISTICS = BASE_CRITERIA
"""The statistic names, in SPEC order (they are the eight base criteria)."""

ALIASES = {"det_gram": "det_corr"}

SQUARE_ONLY = frozenset(("det", "det_corr", *EIG_CRITERIA))
"""Statistics that need eigenvalues or a determinant, hence a square kernel."""

ANY_SHAPE = tuple(name for name in STATISTICS if name not in SQUARE_ONLY)

# Each eigenvalue statistic reduces |λ| or |Re λ| over the spectrum by min or max
# (fmin/fmax: they skip the NaN that mark "no eigenvalue of this kind here").
_EIGEN_REDUCTIONS = {
    "min_eig": ("modulus", np.fmin),
    "min_eig_real": ("abs_real", np.fmin),
    "spectral_radius": ("modulus", np.fmax),
    "spectral_radius_real": ("abs_real", np.fmax),
}

# Above 3×3, LAPACK decides: it returns a real eigenvalue with an imaginary part of
# exactly 0, but a nearly double real eigenvalue may come back as a conjugate pair
# whose imaginary parts are O(sqrt(eps)·‖K‖). Such a pair is indistinguishable from
# a perturbed real one, so an eigenvalue counts as complex only when
# |Im λ| > sqrt(eps)·‖K‖_F.
_COMPLEX_RTOL = float(np.sqrt(np.finfo(np.float64).eps))

# The sign of a computed discriminant is only meaningful beyond its round-off. For
# 2×2, (a − d)² + 4bc is computed to a few ulps of its terms, so the sign is exact
# but for a near-total cancellation. For 3×3, p and q carry absolute errors of a few
# ulps of the (normalised) entries, so Δ within ~1e4·eps·(p² + |q|) of 0 is a
# repeated real root: this calls a pair with |Im λ| ≲ 1e-7·max|K_ij| real, the same
# order as the LAPACK tolerance above.
_EPS = float(np.finfo(np.float64).eps)
_DISCRIMINANT_NOISE_2X2 = 8 * _EPS
_DISCRIMINANT_NOISE_3X3 = 1e4 * _EPS

# When a real and a complex eigenvalue tie for the arg-min / arg-max (e.g. a 3-D
# rotation: 1 and e^{±iθ}), the real one decides. "Tie" means within this fraction
# of the statistic, which absorbs the round-off of the closed forms.
_TIE_RTOL = 1e-12

_EXPONENT_BITS = np.int64(0x7FF0000000000000)
_TINY = np.finfo(np.float64).tiny


def canonical_statistic(name: str) -> str:
    """The SPEC name of a statistic (``det_gram`` → ``det_corr``); PsykError when unknown."""
    canonical = ALIASES.get(name, name)
    if canonical not in STATISTICS:
        known = ", ".join((*STATISTICS, *ALIASES))
        raise PsykError(f"unknown statistic {name!r}; choose from: {known}")
    return canonical


def require_applicable(names: Iterable[str], kernel_shape: tuple[int, int], layer: str | None = None) -> None:
    """PsykError when an eigenvalue/determinant statistic is asked of non-square kernels."""
    kh, kw = kernel_shape
    refused = [name for name in names if name in SQUARE_ONLY]
    if kh != kw and refused:
        where = f"layer {layer!r}: " if layer is not None else ""
        raise PsykError(
            f"{where}{', '.join(refused)} need square kernels, but the kernels are {kh}×{kw}; "
            f"only {' and '.join(ANY_SHAPE)} apply to non-square kernels"
        )


@dataclass(frozen=True)
class _Spectrum:
    """The eigenvalues of m kernels split by kind, as rows of m values (NaN where absent).

    ``real`` holds |λ| of real eigenvalues (for them |Re λ| = |λ|); ``pair_modulus`` and
    ``pair_abs_real`` hold |λ| and |Re λ| of non-real ones (one row per conjugate pair is
    enough: both members share them). ``n_complex`` counts non-real eigenvalues per kernel.
    """

    real: tuple[np.ndarray, ...]
    pair_modulus: tuple[np.ndarray, ...]
    pair_abs_real: tuple[np.ndarray, ...]
    n_complex: np.ndarray

    def summary(self) -> dict[str, np.ndarray]:
        """Per kernel: the four eigenvalue statistics, ``n_complex``, and ``deciding_<statistic>``:
        whether the eigenvalue deciding the statistic (its arg-min / arg-max) is non-real.

        On a tie between a real and a non-real eigenvalue the real one decides.
        """
        has_complex = self.n_complex > 0
        summary = {"n_complex": self.n_complex}
        # For a real eigenvalue |Re λ| = |λ|: one minimum and one maximum serve both kinds.
        best_reals = {best: _reduce_ignoring_nan(best, self.real, has_complex.shape) for best in (np.fmin, np.fmax)}
        for name, (kind, best) in _EIGEN_REDUCTIONS.items():
            best_real = best_reals[best]
            best_complex = _reduce_ignoring_nan(best, getattr(self, f"pair_{kind}"), has_complex.shape)
            summary[name] = best(best_real, best_complex)
            # NaN comparisons are False: with no real eigenvalue a non-real one always wins.
            tie = _TIE_RTOL * summary[name]
            if best is np.fmin:
                summary[f"deciding_{name}"] = has_complex & ~(best_complex >= best_real - tie)
            else:
                summary[f"deciding_{name}"] = has_complex & ~(best_complex <= best_real + tie)
        return summary


def _reduce_ignoring_nan(best, rows: tuple[np.ndarray, ...], shape: tuple[int, ...]) -> np.ndarray:
    """Element-wise fmin/fmax over rows (NaN only where every row is NaN)."""
    if not rows:
        return np.full(shape, np.nan)
    return reduce(best, rows)


class KernelStatistics(Mapping):
    """Read-only mapping ``statistic name → float64 array of shape (...)`` for a stack of kernels.

    Values are computed on first access and cached, so asking for ``weight`` never
    pays for eigenvalues, and the four eigenvalue statistics share one spectrum.
    Keys are the requested statistics under their SPEC names; the alias
    ``det_gram`` also looks up ``det_corr``. Build it with :func:`kernel_statistics`.
    """

    def __init__(
        self,
        unit: np.ndarray,
        scale: np.ndarray,
        batch_shape: tuple[int, ...],
        names: tuple[str, ...],
        layer: str | None,
    ):
        # The m kernels are K = scale · unit (see _normalise); ``unit`` is (kh, kw, m)
        # C-contiguous, so each entry K_ij of all kernels is one contiguous row, which
        # is what makes the closed forms fast.
        self._unit = unit
        self._scale = scale
        self.shape = batch_shape
        self.kernel_shape = unit.shape[:2]
        self.layer = layer
        self._names = names
        self._values: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        key = ALIASES.get(name, name)
        if key not in self._names:
            raise KeyError(name)
        if key not in self._values:
            self._values[key] = self._shaped(self._compute(key))
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"KernelStatistics(shape={self.shape}, kernel_shape={self.kernel_shape}, names={list(self._names)})"

    @property
    def kernel_size(self) -> int | None:
        """k for k×k kernels, None for non-square ones."""
        kh, kw = self.kernel_shape
        return kh if kh == kw else None

    @property
    def n_complex_eigenvalues(self) -> np.ndarray:
        """Per kernel, how many of its eigenvalues are non-real (int array of shape (...))."""
        return self._shaped(self._eigen["n_complex"])

    @cached_property
    def deciding_complex(self) -> dict[str, np.ndarray]:
        """Per eigenvalue criterion (min_eig, min_eig_real, spectral_radius, spectral_radius_real):
        whether the eigenvalue deciding it (arg-min / arg-max) is non-real, bool arrays of shape (...).
        """
        return {name: self._shaped(self._eigen[f"deciding_{name}"]) for name in _EIGEN_REDUCTIONS}

    def _shaped(self, values: np.ndarray) -> np.ndarray:
        shaped = values.reshape(self.shape)
        shaped.flags.writeable = False  # cached and shared: nobody may edit them
        return shaped

    def _compute(self, name: str) -> np.ndarray:
        if name == "weight":
            return _blockwise(_weight, self._unit, self._scale)
        if name == "spectral_norm":
            return _blockwise(_spectral_norm, self._unit, self._scale)
        if name == "det_corr":
            with np.errstate(over="ignore"):  # beyond float64 is inf, like numpy.linalg.det
                return self._det**2
        if name == "det":
            return self._det
        return self._eigen[name]

    def _require_square(self, needed_by: tuple[str, ...]) -> None:
        require_applicable(needed_by, self.kernel_shape, self.layer)

    @cached_property
    def _det(self) -> np.ndarray:
        self._require_square(("det",))
        return _blockwise(_det, self._unit, self._scale)

    @cached_property
    def _eigen(self) -> dict[str, np.ndarray]:
        self._require_square(EIG_CRITERIA)
        return _blockwise(_eigen_summary, self._unit, self._scale)


def kernel_statistics(
    kernels: np.ndarray, names: Iterable[str] | None = None, *, layer: str | None = None
) -> KernelStatistics:
    """Statistics of every kernel in ``kernels`` (shape (..., kh, kw)), each of shape (...).

    ``names=None`` means all eight for square kernels, spectral_norm and weight for
    non-square ones. PsykError for an unknown name, for an eigenvalue/determinant
    statistic of non-square kernels, and for NaN or infinite weights (naming ``layer``).
    """
    kernels = np.asarray(kernels)
    if kernels.dtype.kind != "f":
        kernels = kernels.astype(np.float64)
    if kernels.ndim < 2:
        raise PsykError(f"kernels must have shape (..., kh, kw), got an array of shape {kernels.shape}")
    kh, kw = kernels.shape[-2:]
    if names is None:
        requested = STATISTICS if kh == kw else ANY_SHAPE
    else:
        requested = tuple(dict.fromkeys(canonical_statistic(name) for name in names))
        require_applicable(requested, (kh, kw), layer)
    # (kh, kw, m): for Keras kernels seen through ``layer_kernels`` this is their own
    # memory order, so nothing is copied before the normalised float64 copy.
    entries = np.moveaxis(kernels, (-2, -1), (0, 1)).reshape(kh, kw, -1)
    require_finite(entries, layer)
    return KernelStatistics(*_normalise(entries), kernels.shape[:-2], requested, layer)


def require_finite(weights: np.ndarray, layer: str | None = None) -> None:
    """PsykError naming ``layer`` when ``weights`` hold a NaN or an infinity."""
    if not np.isfinite(weights).all():
        subject = f"layer {layer!r}" if layer is not None else "the kernels"
        raise PsykError(f"{subject} has NaN or infinite weights")


def _normalise(entries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K / s as C-contiguous float64, s) with s = 2^⌊log₂ max|K_ij|⌋ per kernel (1 for a zero kernel).

    Scaling by a power of two is exact; it keeps the closed forms away from overflow
    and subnormals, and makes their round-off bounds independent of the magnitude
    of the weights.
    """
    largest = np.maximum(entries.max(axis=(0, 1)), -entries.min(axis=(0, 1))).astype(np.float64)
    scale = (largest.view(np.int64) & _EXPONENT_BITS).view(np.float64)
    scale[scale == 0] = 1.0
    return np.multiply(entries, 1.0 / scale, order="C", dtype=np.float64), scale


# The closed forms chain dozens of element-wise operations; on blocks of this many
# kernels their temporaries stay in the CPU cache instead of streaming through memory.
_BLOCK = 8192


def _blockwise(compute, unit: np.ndarray, scale: np.ndarray):
    """``compute(unit, scale)`` over blocks of kernels (the last axis), results joined.

    ``compute`` returns an array or a dict of arrays, one value per kernel.
    """
    blocks = [
        compute(unit[..., start : start + _BLOCK], scale[start : start + _BLOCK])
        for start in range(0, max(scale.size, 1), _BLOCK)
    ]
    if isinstance(blocks[0], dict):
        return {key: np.concatenate([block[key] for block in blocks]) for key in blocks[0]}
    return np.concatenate(blocks)


# The functions below take normalised kernels ``unit`` (k, k, m) and their scales s (m,):
# K = s·unit, so det K = sᵏ det(unit), λ(K) = s·λ(unit), σ(K) = s·σ(unit).


def _weight(unit: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return np.abs(unit).mean(axis=(0, 1)) * scale


def _det(unit: np.ndarray, scale: np.ndarray) -> np.ndarray:
    k = unit.shape[0]
    if k == 1:
        det = unit[0, 0].copy()
    elif k <= 3:
        det = _det_closed_form(unit)
    else:
        det = np.linalg.det(np.moveaxis(unit, -1, 0))
    with np.errstate(over="ignore", under="ignore"):  # beyond float64 is inf (or 0), like numpy.linalg.det
        for _ in range(k):  # sᵏ one exact factor at a time: no overflow of sᵏ alone
            det *= scale
    return det


def _eigen_summary(unit: np.ndarray, scale: np.ndarray) -> dict[str, np.ndarray]:
    k = unit.shape[0]
    if k == 1:
        spectrum = _Spectrum((np.abs(unit[0, 0]),), (), (), np.zeros(unit.shape[-1], dtype=np.int64))
    elif k == 2:
        spectrum = _spectrum_2x2(unit)
    elif k == 3:
        spectrum = _spectrum_3x3(unit)
    else:
        spectrum = _spectrum_lapack(np.moveaxis(unit, -1, 0))
    summary = spectrum.summary()
    for name in _EIGEN_REDUCTIONS:
        summary[name] *= scale
    return summary


def _spectral_norm(unit: np.ndarray, scale: np.ndarray) -> np.ndarray:
    kh, kw = unit.shape[:2]
    if kh == kw == 1:
        norm = np.abs(unit[0, 0])
    elif kh == kw == 2:
        norm = _spectral_norm_2x2(unit)
    elif kh == kw == 3:
        norm = _spectral_norm_3x3(unit)
    else:
        norm = np.linalg.svd(np.moveaxis(unit, -1, 0), compute_uv=False)[..., 0]
    return norm * scale


def _det_closed_form(e: np.ndarray) -> np.ndarray:
    """det of 2×2 or 3×3 kernels given as (k, k, m) entries."""
    if e.shape[0] == 2:
        return e[0, 0] * e[1, 1] - e[0, 1] * e[1, 0]
    return (
        e[0, 0] * (e[1, 1] * e[2, 2] - e[1, 2] * e[2, 1])
        - e[0, 1] * (e[1, 0] * e[2, 2] - e[1, 2] * e[2, 0])
        + e[0, 2] * (e[1, 0] * e[2, 1] - e[1, 1] * e[2, 0])
    )


def _spectrum_2x2(e: np.ndarray) -> _Spectrum:
    """Roots of λ² − tr·λ + det; complex when (a − d)² + 4bc = tr² − 4det < 0 beyond round-off."""
    a, b, c, d = e[0, 0], e[0, 1], e[1, 0], e[1, 1]
    trace = a + d
    diagonal_gap = (a - d) * (a - d)
    coupling = 4.0 * b * c
    discriminant = diagonal_gap + coupling  # tr² − 4det without the cancellation
    is_complex = discriminant < -_DISCRIMINANT_NOISE_2X2 * (diagonal_gap + np.abs(coupling))
    root = np.sqrt(np.abs(discriminant))
    with np.errstate(divide="ignore", invalid="ignore"):
        # Real pair: the larger root without cancellation, the smaller one from the product det.
        large = 0.5 * (trace + np.copysign(root, trace))
        small = np.where(large != 0, (a * d - b * c) / large, 0.0)
    # Complex pair: tr/2 ± i·root/2.
    half_trace = np.abs(0.5 * trace)
    return _Spectrum(
        real=(np.where(is_complex, np.nan, np.abs(large)), np.where(is_complex, np.nan, np.abs(small))),
        pair_modulus=(np.where(is_complex, np.hypot(half_trace, 0.5 * root), np.nan),),
        pair_abs_real=(np.where(is_complex, half_trace, np.nan),),
        n_complex=2 * is_complex,
    )


def _spectrum_3x3(e: np.ndarray) -> _Spectrum:
    """Roots of the characteristic cubic, from the traceless B = K − (tr/3)·I.

    B's characteristic polynomial is t³ + p·t + q with p = −½ Σ B_ii² − Σ_{i<j} B_ij·B_ji
    and q = −det B; λ = t + tr/3. Its discriminant Δ = −(4p³ + 27q²) decides: Δ < 0
    (beyond round-off) means one real root and a complex pair (Cardano), otherwise
    three real roots (trigonometric method). Shifting first keeps p and q accurate
    when tr is large.
    """
    shift = (e[0, 0] + e[1, 1] + e[2, 2]) / 3.0
    b00, b11, b22 = e[0, 0] - shift, e[1, 1] - shift, e[2, 2] - shift
    off_products = e[0, 1] * e[1, 0] + e[0, 2] * e[2, 0] + e[1, 2] * e[2, 1]
    p = -0.5 * (b00 * b00 + b11 * b11 + b22 * b22) - off_products
    q = -(
        b00 * (b11 * b22 - e[1, 2] * e[2, 1])
        - e[0, 1] * (e[1, 0] * b22 - e[1, 2] * e[2, 0])
        + e[0, 2] * (e[1, 0] * e[2, 1] - b11 * e[2, 0])
    )
    is_complex = 4.0 * p * p * p + 27.0 * q * q > _DISCRIMINANT_NOISE_3X3 * (p * p + np.abs(q))

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # Three real roots: t = 2r·cos((φ − 2πj)/3) with r = sqrt(−p/3), cos φ = −q / (2r³).
        r = np.sqrt(np.maximum(-p / 3.0, 0.0))
        cos_phi = -q / (2.0 * np.maximum(r * r * r, _TINY))  # r = 0: q ≈ 0 too, and the roots are the shift
        third_phi = np.arccos(np.clip(cos_phi, -1.0, 1.0)) / 3.0
    # cos(θ ∓ 2π/3) = −½cos θ ± (√3/2) sin θ, and sin θ = sqrt(1 − cos²θ) as θ ∈ [0, π/3]
    cos_theta = np.cos(third_phi)
    cos_part, sin_part = r * cos_theta, np.sqrt(3.0) * r * np.sqrt(1.0 - cos_theta * cos_theta)
    first = shift + 2.0 * cos_part
    second = np.abs(shift - cos_part + sin_part)
    third = np.abs(shift - cos_part - sin_part)

    # Kernels with a complex pair (computed on that subset only, the real branch above
    # being wasted there): one real root t₁ = u + v by Cardano, u chosen to avoid
    # cancellation, then the pair from t³ + pt + q = (t − t₁)(t² + t₁t + p + t₁²):
    # Re = −t₁/2, Im² = p + ¾t₁².
    pairs = np.flatnonzero(is_complex)
    p, q, shift = p[pairs], q[pairs], shift[pairs]
    u = -np.copysign(np.cbrt(0.5 * np.abs(q) + np.sqrt(np.maximum(0.25 * q * q + p * p * p / 27.0, 0.0))), q)
    t1 = u - p / (3.0 * u)
    pair_real = shift - 0.5 * t1
    first[pairs] = shift + t1
    second[pairs] = third[pairs] = np.nan
    pair_modulus, pair_abs_real = np.full(first.shape, np.nan), np.full(first.shape, np.nan)
    pair_modulus[pairs] = np.sqrt(pair_real * pair_real + np.maximum(p + 0.75 * t1 * t1, 0.0))
    pair_abs_real[pairs] = np.abs(pair_real)
    return _Spectrum(
        real=(np.abs(first), second, third),
        pair_modulus=(pair_modulus,),
        pair_abs_real=(pair_abs_real,),
        n_complex=2 * is_complex,
    )


def _spectrum_lapack(stack: np.ndarray) -> _Spectrum:
    """Eigenvalues of an (m, k, k) stack by numpy.linalg.eigvals; see _COMPLEX_RTOL."""
    eigenvalues = np.linalg.eigvals(stack).T
    frobenius = np.sqrt((stack * stack).sum(axis=(1, 2)))
    is_complex = np.abs(eigenvalues.imag) > _COMPLEX_RTOL * frobenius
    modulus = np.abs(eigenvalues)
    return _Spectrum(
        real=tuple(np.where(is_complex, np.nan, modulus)),
        pair_modulus=tuple(np.where(is_complex, modulus, np.nan)),
        pair_abs_real=tuple(np.where(is_complex, np.abs(eigenvalues.real), np.nan)),
        n_complex=is_complex.sum(axis=0),
    )


def _spectral_norm_2x2(e: np.ndarray) -> np.ndarray:
    """σ_max = (‖(a + d, b − c)‖ + ‖(a − d, b + c)‖) / 2."""
    a, b, c, d = e[0, 0], e[0, 1], e[1, 0], e[1, 1]
    return 0.5 * (np.hypot(a + d, b - c) + np.hypot(a - d, b + c))


def _spectral_norm_3x3(e: np.ndarray) -> np.ndarray:
    """σ_max = sqrt of the largest eigenvalue of the symmetric G = KᵀK (trigonometric method).

    With g = tr G / 3, h = sqrt(‖G − gI‖²_F / 6) and cos 3θ = det((G − gI)/h) / 2,
    the largest eigenvalue is g + 2h·cos θ.
    """
    columns = [e[:, j] for j in range(3)]
    g00, g11, g22 = ((col * col).sum(axis=0) for col in columns)
    g01 = (columns[0] * columns[1]).sum(axis=0)
    g02 = (columns[0] * columns[2]).sum(axis=0)
    g12 = (columns[1] * columns[2]).sum(axis=0)
    mean = (g00 + g11 + g22) / 3.0
    d0, d1, d2 = g00 - mean, g11 - mean, g22 - mean
    off = g01 * g01 + g02 * g02 + g12 * g12
    h = np.sqrt((d0 * d0 + d1 * d1 + d2 * d2 + 2.0 * off) / 6.0)
    det_shifted = d0 * (d1 * d2 - g12 * g12) - g01 * (g01 * d2 - g12 * g02) + g02 * (g01 * g12 - d1 * g02)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos_3theta = det_shifted / (2.0 * np.maximum(h * h * h, _TINY))  # h = 0: G = gI, largest = g
    largest = mean + 2.0 * h * np.cos(np.arccos(np.clip(cos_3theta, -1.0, 1.0)) / 3.0)
    return np.sqrt(np.maximum(largest, 0.0))
