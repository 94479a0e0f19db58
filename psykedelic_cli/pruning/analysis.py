"""The kernel analysis after the first training stage: eig-stats, set analysis, pruning per threshold.

Input ``layers`` is a list of ``(layer_name, kernel (kh, kw, C_in, C_out), mask (C_in, C_out))``.
Only alive kernels (mask ≠ 0) are counted. A criterion only counts kernels it
applies to: eigenvalue and determinant criteria skip the layers with non-square
kernels (they have no eigenvalues), so eig-stats covers square layers only, the set
analysis covers the layers every compared criterion applies to, and each
criterion's per-threshold ratio is over the kernels it applies to (a criterion that
applies to no kernel is left out of ``pruned_ratio``). The result dicts are those
documented in ``psykedelic_cli.store.schema``; each kernel is pruned by a criterion
when its threshold rule fails (det against tⁿ, det_corr against t²ⁿ, else t).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from psykedelic_cli.pruning.modes import layer_kernels, survival_bound, validate_threshold
from psykedelic_cli.pruning.statistics import (
    SQUARE_ONLY,
    KernelStatistics,
    canonical_statistic,
    kernel_statistics,
    require_finite,
)
from psykedelic_cli.pruning.vocabulary import BASE_CRITERIA, EIG_CRITERIA, PER_THRESHOLD_THRESHOLDS

Layer = tuple[str, np.ndarray, np.ndarray]


def _applies(stats: KernelStatistics, criterion: str) -> bool:
    return stats.kernel_size is not None or criterion not in SQUARE_ONLY


def _pruned(stats: KernelStatistics, criterion: str, threshold: float) -> np.ndarray:
    """Which of the kernels ``criterion``'s threshold rule prunes at ``threshold``."""
    return np.abs(stats[criterion]) < survival_bound(criterion, threshold, stats.kernel_size)


def _alive_kernel_pools(layers: Iterable[Layer]) -> list[KernelStatistics]:
    """The statistics of all alive kernels, one 1-D stack per kernel shape.

    Every result is a total over layers, so the layers' alive kernels are pooled by
    shape: one call per shape instead of one per layer (a ResNet-110 has 109 layers).
    """
    pools: dict[tuple[int, int], list[np.ndarray]] = {}
    for name, kernel, mask in layers:
        kernel = np.asarray(kernel)
        alive = np.asarray(mask) != 0
        if alive.shape != layer_kernels(kernel).shape[:2]:
            raise ValueError(f"layer {name!r}: mask shape {alive.shape} does not match the kernel's {kernel.shape[2:]}")
        alive_kernels = kernel[:, :, alive]  # (kh, kw, n_alive)
        require_finite(alive_kernels, name)
        pools.setdefault(kernel.shape[:2], []).append(alive_kernels)
    # Viewed as (n, kh, kw), the pooled (kh, kw, n) array is read by kernel_statistics in place.
    return [kernel_statistics(np.moveaxis(np.concatenate(pool, axis=-1), -1, 0)) for pool in pools.values()]


def eig_stats(layers: Sequence[Layer], threshold: float) -> dict:
    """Complex eigenvalues among the alive square kernels, and per eigenvalue criterion the
    share of kernels whose deciding eigenvalue is complex, overall and among those it prunes.
    """
    return _eig_stats(_alive_kernel_pools(layers), validate_threshold(threshold))


def set_analysis(layers: Sequence[Layer], threshold: float, criteria: Iterable[str] = BASE_CRITERIA) -> dict:
    """The share of kernels pruned by exactly each combination of ``criteria`` at ``threshold``."""
    return _set_analysis(_alive_kernel_pools(layers), validate_threshold(threshold), criteria)


def pruning_per_threshold(layers: Sequence[Layer], thresholds: Iterable[float] = PER_THRESHOLD_THRESHOLDS) -> dict:
    """The fraction of kernels each base criterion's own rule prunes, per threshold."""
    return _pruning_per_threshold(_alive_kernel_pools(layers), thresholds)


def kernel_analysis(layers: Sequence[Layer], threshold: float) -> dict:
    """``{"eig_stats", "set_analysis", "pruning_per_threshold"}``, statistics computed once per layer."""
    threshold = validate_threshold(threshold)
    pools = _alive_kernel_pools(layers)
    return {
        "eig_stats": _eig_stats(pools, threshold),
        "set_analysis": _set_analysis(pools, threshold, BASE_CRITERIA),
        "pruning_per_threshold": _pruning_per_threshold(pools, PER_THRESHOLD_THRESHOLDS),
    }


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _eig_stats(pools: list[KernelStatistics], threshold: float) -> dict:
    square = [stats for stats in pools if stats.kernel_size is not None]
    total_kernels = sum(stats.shape[0] for stats in square)
    total_eigenvalues = sum(stats.shape[0] * stats.kernel_size for stats in square)
    complex_eigenvalues = sum(int(stats.n_complex_eigenvalues.sum()) for stats in square)
    criteria = {}
    for criterion in EIG_CRITERIA:
        pruned = target_complex = pruned_complex = 0
        for stats in square:
            deciding_complex = stats.deciding_complex[criterion]
            pruned_here = _pruned(stats, criterion, threshold)
            pruned += int(pruned_here.sum())
            target_complex += int(deciding_complex.sum())
            pruned_complex += int((deciding_complex & pruned_here).sum())
        criteria[criterion] = {
            "pruned": pruned,
            "target_complex": target_complex,
            "pruned_complex": pruned_complex,
            "target_complex_ratio": _ratio(target_complex, total_kernels),
            "pruned_complex_ratio": _ratio(pruned_complex, pruned),
        }
    return {
        "total_kernels": total_kernels,
        "total_eigenvalues": total_eigenvalues,
        "complex_eigenvalues": complex_eigenvalues,
        "complex_ratio": _ratio(complex_eigenvalues, total_eigenvalues),
        "criteria": criteria,
    }


def _set_analysis(pools: list[KernelStatistics], threshold: float, criteria: Iterable[str]) -> dict:
    criteria = list(dict.fromkeys(canonical_statistic(name) for name in criteria))
    # Bit i of a kernel's code is set when criteria[i] prunes it.
    codes = [
        sum(_pruned(stats, criterion, threshold).astype(np.int64) << bit for bit, criterion in enumerate(criteria))
        for stats in pools
        if all(_applies(stats, criterion) for criterion in criteria)
    ]
    codes = np.concatenate(codes) if codes else np.zeros(0, dtype=np.int64)
    combinations, counts = np.unique(codes, return_counts=True)
    shares = {
        "+".join(name for bit, name in enumerate(criteria) if code >> bit & 1): int(count) / codes.size
        for code, count in zip(combinations.tolist(), counts)
    }
    return {"criteria": criteria, "total_kernels": int(codes.size), "shares": shares}


def _pruning_per_threshold(pools: list[KernelStatistics], thresholds: Iterable[float]) -> dict:
    thresholds = [validate_threshold(t, "per-threshold threshold") for t in thresholds]
    pruned_ratio = {}
    for criterion in BASE_CRITERIA:
        counted = [stats for stats in pools if _applies(stats, criterion)]
        total = sum(stats.shape[0] for stats in counted)
        if not total:
            continue
        pruned = np.zeros(len(thresholds), dtype=np.int64)
        for stats in counted:
            # A kernel is pruned when |statistic| < bound: sort once, count by binary search.
            scores = np.sort(np.abs(stats[criterion]))
            bounds = [survival_bound(criterion, threshold, stats.kernel_size) for threshold in thresholds]
            pruned += np.searchsorted(scores, bounds, side="left")
        pruned_ratio[criterion] = (pruned / total).tolist()
    return {"thresholds": thresholds, "pruned_ratio": pruned_ratio, "rule": "own"}
