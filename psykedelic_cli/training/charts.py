"""Charts of one run, written to ``--out-dir`` at the end of ``psyk train``."""

from __future__ import annotations

from pathlib import Path


def _figure(width: float, height: float, **subplots):
    """A constrained-layout figure and its subplots, built without pyplot: no backend
    switch and no figure registry in the caller's session (a notebook keeps its own)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.subplots(**subplots)


def learning_curve_chart(run: dict, path: Path) -> Path:
    """Loss and accuracy (train and validation) per epoch, stages shaded, pruning points marked."""
    from matplotlib.ticker import MaxNLocator

    curve = run.get("results", {}).get("learning_curve") or {}
    epochs = curve.get("epoch", [])
    fig, (ax_loss, ax_acc) = _figure(10, 3.6, ncols=2)
    for ax, key, label in ((ax_loss, "loss", "loss"), (ax_acc, "accuracy", "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = curve.get(prefix + key)
            if values and any(v is not None for v in values):
                ax.plot(epochs, values, style, label=("validation " if prefix else "training ") + label)
        for stage in run.get("results", {}).get("pruning_stages", []):
            ax.axvline(stage["epoch"], color="grey", linestyle=":", linewidth=1)
            ax.annotate(f"pruned\n({stage['compression_ratio']:.1%})", (stage["epoch"], 0.5),
                        xycoords=("data", "axes fraction"), fontsize=7, color="grey", ha="left")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label + (" (fraction)" if key == "accuracy" else ""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    config = run.get("config", {})
    fig.suptitle(f"{config.get('model')} on {config.get('dataset')}, mode {config.get('mode')}: learning curve")
    _save(fig, path)
    return path


def per_layer_chart(run: dict, path: Path) -> Path:
    """Active vs total parameters per conv layer of the trained model, with the active ratio."""
    layers = run.get("results", {}).get("pruning_per_layer_final") or []
    names = [layer["layer"] for layer in layers]
    total = [layer["total_params"] for layer in layers]
    active = [layer["active_params"] for layer in layers]
    width = max(6.0, 0.28 * len(names) + 2)
    fig, ax = _figure(width, 4)
    positions = range(len(names))
    ax.bar(positions, total, color="#d0d0d0", label="total parameters")
    ax.bar(positions, active, color="#1f77b4", label="active parameters")
    ax.set_xticks(list(positions))
    ax.set_xticklabels(names, rotation=90, fontsize=7)
    ax.set_ylabel("parameters")
    ratio = ax.twinx()
    ratio.plot(list(positions), [a / t if t else 0.0 for a, t in zip(active, total)], "o-", color="#d62728",
               markersize=3, linewidth=1, label="active ratio")
    ratio.set_ylim(0, 1.05)
    ratio.set_ylabel("active / total")
    handles = ax.get_legend_handles_labels()[0] + ratio.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + ratio.get_legend_handles_labels()[1]
    fig.legend(handles, labels, loc="outside lower center", fontsize=8, ncols=3, frameon=False)
    config = run.get("config", {})
    fig.suptitle(f"{config.get('model')} on {config.get('dataset')}, mode {config.get('mode')}: parameters per layer",
                 fontsize=10)
    _save(fig, path)
    return path


def _save(fig, path: Path) -> None:
    """Write ``fig`` to ``path`` whole or not at all (the format from the suffix)."""
    from psykedelic_cli.outputs import replacing

    with replacing(path) as temporary:
        fig.savefig(temporary, dpi=120)
