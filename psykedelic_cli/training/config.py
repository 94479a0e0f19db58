"""What one training run is asked to do, validated before any TensorFlow work starts."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from psykedelic_cli.errors import PsykError
from psykedelic_cli.pruning.modes import DEFAULT_CONTRIBUTION_THRESHOLD, DEFAULT_RATE, DEFAULT_THRESHOLD
from psykedelic_cli.store.schema import BASE_CRITERIA

OPTIMIZERS = ("adam", "sgd", "rmsprop", "adagrad")
DISTRIBUTE = ("none", "mirrored")
LOSS = "categorical_crossentropy"

# The step schedule of SPEC.md: the learning rate is multiplied by the factor once
# the epoch (0-based) is past the bound.
LR_STEPS = ((180, 5e-4), (160, 1e-3), (120, 1e-2), (80, 1e-1))


def lr_factor(epoch: int) -> float:
    """×0.1 after epoch 80, ×0.01 after 120, ×1e-3 after 160, ×5e-4 after 180."""
    for bound, factor in LR_STEPS:
        if epoch >= bound:
            return factor
    return 1.0


@dataclass
class TrainConfig:
    """One run: a model, a dataset, one pruning mode, one L1 penalty, one seed."""

    dataset: str = "digits"
    data_dir: Path | None = None
    depth: int = 20
    epochs: int = 20
    steps: int = 2
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    decay: float = 0.0
    l1_penalty: float = 5e-5  # digits: >= 96 % unpruned accuracy over seeds 0-2; 1e-4 prunes more at ~95.3 %
    mode: str | None = "min_eig"
    compare: tuple[str, ...] = BASE_CRITERIA
    threshold: float = DEFAULT_THRESHOLD
    contribution_threshold: float = DEFAULT_CONTRIBUTION_THRESHOLD
    rate: float = DEFAULT_RATE
    history_interval: int = 0
    init: Path | None = None
    residual: bool = True
    stop_after_pruning: bool = False
    patience: int = 5
    save_model: bool = False
    out_dir: Path | None = Path("psyk-out")
    seed: int | None = 0
    distribute: str = "none"
    extra: dict = field(default_factory=dict)

    def validate(self) -> "TrainConfig":
        """Raise PsykError for the first invalid value; return self."""
        from psykedelic_cli.data import DATASETS
        from psykedelic_cli.pruning.modes import resolve_modes, validate_pruning_parameters

        def need(ok: bool, message: str) -> None:
            if not ok:
                raise PsykError(message)

        need(self.steps >= 2, f"--steps must be at least 2 (got {self.steps})")
        need(self.epochs >= self.steps, f"--epochs must be at least --steps ({self.steps}); got {self.epochs}")
        need(self.batch_size >= 1, f"--batch-size must be a positive integer (got {self.batch_size})")
        need(math.isfinite(self.lr) and self.lr > 0, f"--lr must be a positive number (got {self.lr})")
        need(self.optimizer in OPTIMIZERS, f"unknown optimizer '{self.optimizer}'; choose from {', '.join(OPTIMIZERS)}")
        need(0 <= self.momentum < 1, f"--momentum must be in [0, 1) (got {self.momentum})")
        need(self.decay >= 0, f"--decay must be ≥ 0 (got {self.decay})")
        need(self.l1_penalty >= 0, f"--l1-penalty must be ≥ 0 (got {self.l1_penalty})")
        need(self.history_interval >= 0, f"--history-interval must be ≥ 0 (got {self.history_interval})")
        need(self.patience >= 0, f"--patience must be ≥ 0 (got {self.patience})")
        need(self.dataset in DATASETS, f"unknown dataset '{self.dataset}'; choose from {', '.join(DATASETS)}")
        need(
            self.distribute in DISTRIBUTE,
            f"unknown --distribute '{self.distribute}'; choose from {', '.join(DISTRIBUTE)}",
        )
        need(self.init is None or Path(self.init).is_file(), f"--init file not found: {self.init}")
        validate_pruning_parameters(self.threshold, self.contribution_threshold, self.rate)
        if self.mode is not None:
            (self.mode,) = resolve_modes([self.mode])
        self.compare = tuple(resolve_modes(self.compare))
        return self

    @property
    def stage_epochs(self) -> list[int]:
        """Epochs per stage: ``epochs // steps`` each, the remainder going to the last stage."""
        base = self.epochs // self.steps
        return [base] * (self.steps - 1) + [self.epochs - base * (self.steps - 1)]

    @property
    def init_mode(self) -> str:
        return "default" if self.init is None else Path(self.init).stem

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def store_config(self, model_name: str) -> dict:
        """The run document's ``config`` (see ``psykedelic_cli.store.schema``)."""
        return {
            "model": model_name,
            "depth": self.depth,
            "dataset": self.dataset,
            "optimizer": self.optimizer,
            "loss": LOSS,
            "lr": self.lr,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "steps": self.steps,
            "momentum": self.momentum,
            "decay": self.decay,
            "init_mode": self.init_mode,
            "l1_penalty": self.l1_penalty,
            "mode": self.mode,
            "compare": list(self.compare),
            "threshold": self.threshold,
            "contribution_threshold": self.contribution_threshold,
            "rate": self.rate,
            "history_interval": self.history_interval,
            "residual": self.residual,
            "seed": self.seed,
            "patience": self.patience,
            "stop_after_pruning": self.stop_after_pruning,
            "distribute": self.distribute,
            "init": None if self.init is None else str(self.init),
            **self.extra,
        }
