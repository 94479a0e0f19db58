"""Kernel statistics of every 3×3 kernel of a CIFAR ResNet-110 (191,024) against a per-kernel loop.

The baseline is the obvious code: for each kernel, numpy.linalg's det, det of KᵀK,
eigvals (then min/max of |λ| and |Re λ|), norm(K, 2) and mean |K|. It is timed on a
subset of 20,000 kernels and scaled linearly to the full count (a Python loop costs
the same per kernel whatever the count); ours runs on all of them. Also timed: the
kernel analysis (eig-stats, set analysis, pruning per threshold) of the same
kernels as the 109 layers of the network. Goal ≥ 300×; below 100× is not done.
"""

from __future__ import annotations

import statistics

import numpy as np

from bench._util import console, figures_table, fmt_seconds, median_seconds
from psykedelic_cli.pruning.analysis import kernel_analysis
from psykedelic_cli.pruning.modes import layer_kernels
from psykedelic_cli.pruning.statistics import STATISTICS, kernel_statistics

LOOP_SUBSET = 20_000
ROUNDS = 3
GOAL = 300.0
LIMIT = 100.0


def resnet110_layers(rng: np.random.Generator) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The 3×3 conv kernels of a CIFAR ResNet-110 (stem + 3 stages × 18 blocks × 2 convs), He-normal."""
    shapes = [(3, 16)]
    for stage, width in enumerate((16, 32, 64)):
        for block in range(18):
            first_in = width // 2 if stage and not block else width
            shapes += [(first_in, width), (width, width)]
    layers = []
    for index, (c_in, c_out) in enumerate(shapes):
        kernel = rng.standard_normal((3, 3, c_in, c_out)).astype(np.float32) * np.sqrt(2.0 / (9 * c_in))
        layers.append((f"conv2d_{index}", kernel, np.ones((c_in, c_out), dtype=np.float32)))
    return layers


def per_kernel_loop(kernels: np.ndarray) -> None:
    for kernel in kernels:
        eigenvalues = np.linalg.eigvals(kernel)
        moduli, real_parts = np.abs(eigenvalues), np.abs(eigenvalues.real)
        (
            np.linalg.det(kernel),
            np.linalg.det(kernel.T @ kernel),
            moduli.min(),
            real_parts.min(),
            moduli.max(),
            real_parts.max(),
            np.linalg.norm(kernel, 2),
            np.abs(kernel).mean(),
        )


def all_statistics(kernels: np.ndarray) -> None:
    stats = kernel_statistics(kernels)
    for name in STATISTICS:
        stats[name]


def with_complex_decisions(kernels: np.ndarray) -> None:
    stats = kernel_statistics(kernels)
    for name in STATISTICS:
        stats[name]
    stats.n_complex_eigenvalues, stats.deciding_complex


def _verdict(ratio: float) -> str:
    if ratio >= GOAL:
        return "ok"
    return "below goal" if ratio >= LIMIT else "NOT DONE"


def run() -> None:
    layers = resnet110_layers(np.random.default_rng(0))
    # Every kernel in one stack, kept in the Keras memory layout (3, 3, n) and seen as
    # (n, 3, 3), as layer_kernels presents a layer; the loop gets plain 3×3 arrays.
    stack = np.moveaxis(np.concatenate([kernel.reshape(3, 3, -1) for _, kernel, _ in layers], axis=-1), -1, 0)
    count = len(stack)
    subset = np.ascontiguousarray(stack[:: count // LOOP_SUBSET][:LOOP_SUBSET], dtype=np.float64)

    candidates = {
        "8 statistics, one stack": lambda: all_statistics(stack),
        "… plus complex counts/decisions": lambda: with_complex_decisions(stack),
        "8 statistics, 109 calls (per layer)": lambda: [all_statistics(layer_kernels(k)) for _, k, _ in layers],
        "kernel analysis (109 layers)": lambda: kernel_analysis(layers, 1e-4),
    }
    # Rounds alternate the slow loop with ours, so a change of machine load hits both.
    loop_rounds, our_rounds = [], {figure: [] for figure in candidates}
    for _ in range(ROUNDS):
        loop_rounds.append(median_seconds(lambda: per_kernel_loop(subset), repeat=1, warmup=0) * count / len(subset))
        for figure, candidate in candidates.items():
            our_rounds[figure].append(median_seconds(candidate, repeat=5))
    loop = statistics.median(loop_rounds)

    rows = []
    for index, (figure, seconds) in enumerate(our_rounds.items()):
        ratio = loop / statistics.median(seconds)
        headline = index == 0
        rows.append(
            {
                "figure": figure,
                "ours": fmt_seconds(statistics.median(seconds)),
                "baseline": fmt_seconds(loop),
                "ratio": f"{ratio:.0f}×",
                "goal": f"≥ {GOAL:.0f}×" if headline else "",
                "verdict": _verdict(ratio) if headline else "",
            }
        )
    console.print(
        figures_table(f"Statistics of {count:,} 3×3 kernels (ResNet-110) vs a per-kernel numpy.linalg loop", rows)
    )
    console.print(
        f"baseline: the loop timed on {len(subset):,} kernels, scaled ×{count / len(subset):.2f}; "
        f"medians of {ROUNDS} rounds; goal ≥ {GOAL:.0f}×, below {LIMIT:.0f}× not done"
    )
