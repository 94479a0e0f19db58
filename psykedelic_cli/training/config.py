"""What one run is asked to do: one typed definition of every option of ``psyk train`` and ``psyk record``.

Each field of ``TrainConfig`` and ``RecordConfig`` is declared once, with its default, its
command-line help, what it allows and whether the run document stores it (a ``Spec`` in
the field's metadata). Everything else is derived from that declaration:

- the options of ``psyk train`` and ``psyk record`` (``cli/train.py`` builds the command
  signatures from ``option_fields``);
- the keys of a ``--config`` TOML file and their checks (``read_config_file``);
- the validation of every value, before TensorFlow loads (``validate``);
- the ``config`` a run stores (``store_config``); tests assert that its keys are the
  schema's ``CONFIG_FIELDS`` (train) and ``RECORD_CONFIG_FIELDS`` (record).

The validation and test images never follow ``--seed``: every seed trains on the same
training images and is validated (early stopping) and tested on the same held-out
images, so runs of different seeds differ only by initialisation, shuffling,
augmentation and the random modes, and the criteria of runs of different seeds are
always compared on identical test images.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from psykedelic_cli.backends import BACKENDS, requested_backend
from psykedelic_cli.backends.distribution import DISTRIBUTIONS as DISTRIBUTE
from psykedelic_cli.backends.distribution import check_distribution
from psykedelic_cli.errors import PsykError
from psykedelic_cli.pruning.modes import DEFAULT_CONTRIBUTION_THRESHOLD, DEFAULT_RATE, DEFAULT_THRESHOLD, MODES
from psykedelic_cli.pruning.vocabulary import BASE_CRITERIA

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

OPTIMIZERS = ("adam", "sgd", "rmsprop", "adagrad")
LOSS = "categorical_crossentropy"

@dataclass(frozen=True)
class Spec:
    """How a config field appears on the command line, in a TOML file and in the store."""

    help: str
    allowed: str | Callable[[], str] | None = None
    """What the field allows, in words, for messages ("an integer ≥ 2"); a callable is asked only when needed."""
    check: Callable[[Any], bool] | None = None
    """True when a (type-correct) value is allowed; None: every value of the type is."""
    repeatable: bool = False
    """The command line and TOML take a list of values: one run per value."""
    stored: bool = True
    """Written into the run document's ``config``."""
    flags: tuple[str, ...] = ()
    """The option's spellings when not just ``--<name>`` (e.g. a second name kept for old scripts)."""
    required: bool = False
    """The command has no default for it."""

    def describe(self) -> str:
        return self.allowed() if callable(self.allowed) else (self.allowed or "")


def option(default: Any, help: str, **spec) -> Any:
    """A config field: its default and its ``Spec`` (the keyword arguments)."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("mutable defaults are not allowed; use a tuple")
    return field(default=default, metadata={"spec": Spec(help, **spec)})


def _datasets() -> tuple[str, ...]:
    from psykedelic_cli.data import DATASETS

    return DATASETS


def _one_of(names: tuple[str, ...] | Callable[[], tuple[str, ...]]) -> dict:
    """``allowed``/``check`` for a choice among ``names`` (a callable: looked up only when used)."""
    get = names if callable(names) else (lambda: names)
    return {"allowed": lambda: "one of " + ", ".join(get()), "check": lambda value: value in get()}


def _at_least(bound: float, kind: str = "an integer") -> dict:
    return {"allowed": f"{kind} ≥ {bound:g}", "check": lambda value: math.isfinite(value) and value >= bound}


def _is_mode(name: str) -> bool:
    from psykedelic_cli.pruning.modes import resolve_modes

    try:
        resolve_modes([name])
    except PsykError:
        return False
    return True


_MODE = {"allowed": "a pruning mode (`psyk prune --help` lists them) or 'all'", "check": _is_mode}



_POSITIVE = {"allowed": "a positive number", "check": lambda value: math.isfinite(value) and value > 0}
_SENSITIVITY_MODE = {"allowed": "a pruning mode (`psyk prune --help` lists them)", "check": lambda name: name in MODES}


# Fields that psyk train and psyk record share: declared once, used by both classes.
def _backend() -> Any:
    return option(
        None, "Keras backend: tensorflow | jax | torch (default: KERAS_BACKEND, else tensorflow).", **_one_of(BACKENDS)
    )


def _data_dir() -> Any:
    return option(None, "Folder holding the dataset archives or folders.", stored=False)


def _compare() -> Any:
    return option(
        BASE_CRITERIA,
        "Modes compared on the same weights (train: after stage 1; repeatable, 'all'; "
        "default: the eight base criteria).",
        **_MODE,
    )


def _threshold() -> Any:
    return option(DEFAULT_THRESHOLD, "Significance threshold t.", **_POSITIVE)


def _contribution_threshold() -> Any:
    return option(DEFAULT_CONTRIBUTION_THRESHOLD, "Contribution threshold c.", **_POSITIVE)


def _rate() -> Any:
    return option(
        DEFAULT_RATE, "Compression rate r: the fraction that dies in the sorted modes.",
        allowed="a number in [0, 1] (the fraction of kernels or neurons that dies)",
        check=lambda value: 0 <= value <= 1,
    )


class _Config:
    """What TrainConfig and RecordConfig share: validation, TOML values, the stored config."""

    def __post_init__(self):
        if getattr(self, "backend", "") is None:  # the run records the backend it runs on
            self.backend = requested_backend()

    def validate(self):
        """Raise PsykError for the first invalid value (naming the option, the value and what is allowed);
        resolve mode names (``all``, aliases). Returns self."""
        from psykedelic_cli.pruning.modes import resolve_modes, validate_pruning_parameters

        for item in option_fields(type(self)):
            value = getattr(self, item.name)
            spec = item.metadata["spec"]
            check_value(value, spec, hints(type(self))[item.name], flag_of(item))
        self._validate_together()
        validate_pruning_parameters(self.threshold, self.contribution_threshold, self.rate)
        if getattr(self, "mode", None) is not None:
            (self.mode,) = resolve_modes([self.mode])
        self.compare = tuple(resolve_modes(self.compare))
        return self

    def _validate_together(self) -> None:
        """Checks across fields (none by default)."""

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def _stored(self) -> dict:
        return {
            item.name: _plain(getattr(self, item.name))
            for item in dataclasses.fields(self)
            if item.metadata.get("spec") is not None and item.metadata["spec"].stored
        }


@dataclass
class TrainConfig(_Config):
    """One training run: a model, a dataset, one pruning mode, one L1 penalty, one seed."""

    dataset: str = option("digits", "digits | cifar10 | cifar100 | tiny-imagenet.", **_one_of(_datasets))
    data_dir: Path | None = _data_dir()
    backend: str | None = _backend()
    depth: int = option(20, "ResNet depth: 6m+2 (thin: 20, 32, 44, 56, 110) or 50/101/152.", **_at_least(8))
    epochs: int = option(20, "Total epochs, split over --steps stages.", **_at_least(2))
    steps: int = option(2, "Number of stages (≥ 2).", **_at_least(2))
    batch_size: int = option(32, "Mini-batch size.", **_at_least(1))
    lr: float = option(1e-3, "Base learning rate (step schedule ×0.1 after epoch 80, …).", **_POSITIVE)
    optimizer: str = option("adam", " | ".join(OPTIMIZERS), **_one_of(OPTIMIZERS))
    momentum: float = option(
        0.9, "SGD momentum.", allowed="a number in [0, 1)", check=lambda value: 0 <= value < 1
    )
    decay: float = option(
        0.0, "Inverse-time learning-rate decay per iteration (0 = off).", **_at_least(0, "a number")
    )
    # digits: >= 96 % unpruned accuracy over seeds 0-2; 1e-4 prunes more at ~95.3 %
    l1_penalty: float = option(
        5e-5, "L1 penalty on conv kernels in the pruning stages (repeatable).", repeatable=True,
        **_at_least(0, "a number"),
    )
    mode: str | None = option(
        "min_eig",
        "Pruning mode to train with (repeatable; 'all' = all 27 modes; `psyk prune --help` lists them).",
        repeatable=True,
        **_MODE,
    )
    compare: tuple[str, ...] = _compare()
    threshold: float = _threshold()
    contribution_threshold: float = _contribution_threshold()
    rate: float = _rate()
    history_interval: int = option(0, "Compare modes every N epochs of stage 1 (0 = off).", **_at_least(0))
    sensitivity: str | None = option(
        None, "At the end of stage 1, prune each conv layer alone by this mode over its default grid "
        "(`psyk sensitivity`); recorded in the run.", stored=False, **_SENSITIVITY_MODE,
    )
    init: Path | None = option(
        None, "Initial weights: a .keras model or .weights.h5 file.", allowed="an existing file",
        check=lambda value: Path(value).is_file(),
    )
    residual: bool = option(True, "Keep the residual connections.")
    stop_after_pruning: bool = option(False, "Skip the last (fine-tuning) stage.")
    patience: int = option(5, "Early-stopping patience (epochs) in the last stage.", **_at_least(0))
    save_model: bool = option(False, "Save the trained model (.keras) in the run's output folder.", stored=False)
    out_dir: Path | None = option(
        Path("psyk-out"), "Per-run charts (and models) go to OUT_DIR/<run id>/.", stored=False
    )
    seed: int | None = option(0, "Random seed (repeatable: one run per seed).", repeatable=True)
    distribute: str = option(
        "none", "none | mirrored: one replica per local GPU (TensorFlow's MirroredStrategy, JAX's DataParallel; "
        "not on torch).", **_one_of(DISTRIBUTE),
    )
    torch_compile: bool = option(
        False, "On --backend torch, compile the train step with torch.compile (Keras' jit_compile): a ResNet-20 "
        "step 3.8x faster on 2 CPU cores, after minutes of compiling (a digits run 11x slower).", stored=False,
    )
    share_first_stage: bool = option(
        True, "Runs that differ only in --mode train their first stage once and branch from it "
        "(the same results as trained alone).",
    )
    baseline: bool = option(
        False, "Also train and record the uncompressed ResNet (no L1, no pruning) per seed.", stored=False
    )
    """An option of ``psyk train``: one more run per seed with ``mode=None, l1_penalty=0`` (that run's own
    ``baseline`` stays False)."""
    extra: dict = field(default_factory=dict)
    """Further keys stored in the run's config as they are (the library's, not the command line's)."""

    def _validate_together(self) -> None:
        if self.epochs < self.steps:
            raise PsykError(f"--epochs must be at least --steps ({self.steps}); got {self.epochs}")
        check_distribution(self.distribute, self.backend)
        if self.torch_compile and self.backend != "torch":
            raise PsykError(f"--torch-compile needs --backend torch (the backend is {self.backend}; "
                            "TensorFlow and JAX compile their steps already)")

    @property
    def stage_epochs(self) -> list[int]:
        """Epochs per stage: ``epochs // steps`` each, the remainder going to the last stage."""
        base = self.epochs // self.steps
        return [base] * (self.steps - 1) + [self.epochs - base * (self.steps - 1)]

    @property
    def init_mode(self) -> str:
        return "default" if self.init is None else Path(self.init).stem

    @property
    def init_digest(self) -> str | None:
        """The first 12 hex digits of the SHA-256 of the ``--init`` file (None without one): runs
        from different initial weights never share it, though their files may share a name."""
        if self.init is None:
            return None
        digest = hashlib.sha256()
        with open(self.init, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()[:12]

    def store_config(self, model_name: str, identity: dict) -> dict:
        """The run document's ``config``: the model (its name, and ``identity``: ``architecture`` and
        ``params`` from ``psykedelic_cli.models.identity.model_identity``), the loss, the init mode and
        every stored field (keys: ``psykedelic_cli.store.schema.CONFIG_FIELDS``), plus ``extra``."""
        return {"model": model_name, **_identity(identity), "loss": LOSS, "init_mode": self.init_mode,
                "init_digest": self.init_digest, **self._stored(), **self.extra}


@dataclass
class RecordConfig(_Config):
    """One ``psyk record`` run: the kernel analysis and the comparison of a trained model, no training."""

    dataset: str = option("digits", "The dataset the model was trained on.", required=True, **_one_of(_datasets))
    data_dir: Path | None = _data_dir()
    backend: str | None = _backend()
    compare: tuple[str, ...] = _compare()
    threshold: float = _threshold()
    contribution_threshold: float = _contribution_threshold()
    rate: float = _rate()
    eval_batch_size: int = option(
        256, "Batch size of the evaluations.", flags=("--eval-batch-size", "--batch-size"), **_at_least(1)
    )
    seed: int | None = option(
        0, "Seed of the random modes (the validation and test images never depend on it)."
    )

    def store_config(self, model_name: str, model_file: Path, identity: dict) -> dict:
        """The run document's ``config`` (keys: ``psykedelic_cli.store.schema.RECORD_CONFIG_FIELDS``):
        what ``psyk record`` used (the model by name, file and ``identity``, as for ``TrainConfig``),
        and no training setting, since it trains nothing."""
        return {"model": model_name, **_identity(identity), "model_file": str(model_file), **self._stored()}


@dataclass
class SensitivityConfig(_Config):
    """One ``psyk sensitivity`` run: each Conv2D of a trained model pruned alone over a grid of one mode."""

    dataset: str = option("digits", "The dataset the model was trained on.", required=True, **_one_of(_datasets))
    data_dir: Path | None = _data_dir()
    backend: str | None = _backend()
    mode: str = option("min_eig", "The pruning mode whose grid each layer is pruned over.", **_SENSITIVITY_MODE)
    threshold: tuple[float, ...] = option(
        (), "Grid of a threshold mode (t) or a contribution mode (c), repeatable; default: eight values "
        "from 1e-3 (t: to 0.5, c: to 0.1).", stored=False, **_POSITIVE,
    )
    rate: tuple[float, ...] = option(
        (), "Grid of a sorted mode (r, the fraction that dies), repeatable; default: 0.1, 0.2 … 0.8.",
        stored=False, allowed="a number in [0, 1]", check=lambda value: 0 <= value <= 1,
    )
    eval_batch_size: int = option(
        256, "Batch size of the evaluations.", flags=("--eval-batch-size", "--batch-size"), **_at_least(1)
    )
    seed: int | None = option(0, "Seed of the random modes.")

    def validate(self):
        """PsykError for the first invalid value, or a grid of the kind the mode does not take. Returns self."""
        for item in option_fields(type(self)):
            check_value(getattr(self, item.name), item.metadata["spec"], hints(type(self))[item.name], flag_of(item))
        from psykedelic_cli.training.sensitivity import sensitivity_grid

        sensitivity_grid(self.mode, self.threshold, self.rate)
        return self

    @property
    def grid(self) -> tuple[str, tuple[float, ...]]:
        """``(parameter, values)``: ``threshold``, ``contribution_threshold`` or ``rate`` and its sorted grid."""
        from psykedelic_cli.training.sensitivity import sensitivity_grid

        return sensitivity_grid(self.mode, self.threshold, self.rate)

    def store_config(self, model_name: str, model_file: Path, identity: dict) -> dict:
        """The run document's ``config`` (keys: ``psykedelic_cli.store.schema.SENSITIVITY_CONFIG_FIELDS``): the
        model as for ``RecordConfig``, the mode, the grid's parameter and values, the seed, the batch size."""
        parameter, grid = self.grid
        return {"model": model_name, **_identity(identity), "model_file": str(model_file), **self._stored(),
                "grid_parameter": parameter, "grid": list(grid)}


def _identity(identity: dict) -> dict:
    """A model's ``architecture`` fingerprint and parameter count, the two keys ``model_identity`` gives."""
    return {"architecture": identity["architecture"], "params": identity["params"]}


@functools.cache
def hints(config_class: type) -> dict[str, Any]:
    return typing.get_type_hints(config_class)


def option_fields(config_class: type) -> list[dataclasses.Field]:
    """The fields of ``config_class`` that are options (have a ``Spec``), in declaration order."""
    return [item for item in dataclasses.fields(config_class) if item.metadata.get("spec") is not None]


def flag_of(item: dataclasses.Field) -> str:
    """The option's main spelling: ``--batch-size`` for ``batch_size``."""
    spec = item.metadata["spec"]
    return spec.flags[0] if spec.flags else "--" + item.name.replace("_", "-")


def scalar_type(hint: Any) -> type:
    """int, float, str, bool or Path: the type of one value of a field typed ``hint``."""
    args = [arg for arg in typing.get_args(hint) if arg is not type(None) and arg is not Ellipsis]
    if not args:
        return hint
    return scalar_type(args[0])


def is_sequence(hint: Any) -> bool:
    return typing.get_origin(hint) in (tuple, list)


def check_value(value: Any, spec: Spec, hint: Any, where: str) -> None:
    """Raise PsykError when ``value`` has the wrong type or is not allowed for a field typed
    ``hint``; ``where`` names the field in the message (an option)."""
    kind = scalar_type(hint)
    if value is None:
        if type(None) in typing.get_args(hint):
            return
        raise PsykError(f"{where} must be {_KIND[kind]} (got nothing)")
    for each in value if is_sequence(hint) else (value,):
        if not _converted(each, kind)[0]:
            raise PsykError(f"{where} must be {_KIND[kind]} (got {_shown(each)})")
        if spec.check is not None and not spec.check(each):
            raise PsykError(f"{where} must be {spec.describe()} (got {_shown(each)})")


_KIND = {int: "an integer", float: "a number", str: "a string", bool: "true or false", Path: "a path (a string)"}


def _converted(value: Any, kind: type) -> tuple[bool, Any]:
    """``(ok, value as kind)`` for a value read from TOML: no booleans as numbers, integers as floats."""
    if kind is bool:
        return isinstance(value, bool), value
    if isinstance(value, bool):
        return False, value
    if kind is float and isinstance(value, (int, float)):
        return True, float(value)
    if kind is Path and isinstance(value, str):
        return True, Path(value)
    return isinstance(value, kind), value


def _shown(value: Any) -> str:
    """A value as TOML shows it: true, 1e-05, "text", [1, 2], a table."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return "an array of tables"
    if isinstance(value, list):
        return "[" + ", ".join(map(_shown, value)) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Path):
        return json.dumps(str(value))
    return json.dumps(value, default=str)


def read_toml(path: Path, what: str) -> dict:
    """The TOML file ``path`` as a dict; PsykError (``what`` names the file's role: "--config", "grid
    file") when it is missing or no readable TOML."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PsykError(f"{what} file not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PsykError(f"{what} {path} is not a readable TOML file: {exc}") from None


def read_config_file(path: str | Path, config_class: type = TrainConfig) -> dict[str, Any]:
    """The option values of the TOML file ``path``, checked and converted.

    Keys are option names (``batch-size`` or ``batch_size``), either at the top level or in
    a ``[train]`` table; a key in ``[train]`` overrides the same key at the top level (and
    the command line overrides both). A repeatable option takes a value or a list. Returns
    ``{field name: value}`` (repeatable fields as lists). Raises PsykError naming the file,
    the key, what was given and what is allowed.
    """
    path = Path(path)
    data = read_toml(path, "--config")
    table = data.pop("train", {})
    if not isinstance(table, dict):
        raise PsykError(f"--config {path}: train = {_shown(table)}: expected a [train] table of options")
    fields = {item.name: item for item in option_fields(config_class)}
    values: dict[str, Any] = {}
    for key, value in [*data.items(), *table.items()]:
        name = key.replace("-", "_")
        if name not in fields:
            allowed = ", ".join(sorted(name.replace("_", "-") for name in fields))
            raise PsykError(f"--config {path}: unknown option '{key}'; allowed: {allowed}")
        values[name] = _file_value(path, key, value, fields[name], hints(config_class)[name])
    return values


def _file_value(path: Path, key: str, value: Any, item: dataclasses.Field, hint: Any) -> Any:
    spec = item.metadata["spec"]
    kind = scalar_type(hint)
    many = spec.repeatable or is_sequence(hint)
    items = value if many and isinstance(value, list) else [value]
    if not items:
        raise PsykError(f"--config {path}: {key} = []: expected at least one value")
    converted = []
    for each in items:
        ok, each = _converted(each, kind)
        if not ok:
            expected = _KIND[kind] + (f" or a list of them ({_KIND[kind]} each)" if many else "")
            raise PsykError(f"--config {path}: {key} = {_shown(value)}: expected {expected}")
        if spec.check is not None and not spec.check(each):
            raise PsykError(f"--config {path}: {key} = {_shown(value)}: expected {spec.describe()}")
        converted.append(each)
    if not many:
        return converted[0]
    return tuple(converted) if is_sequence(hint) else converted


def _plain(value: Any) -> Any:
    """A value as the store keeps it (JSON): paths as strings, tuples as lists."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value
