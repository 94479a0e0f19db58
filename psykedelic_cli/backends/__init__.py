"""Which Keras backend psyk runs on, and the little that must differ between backends.

Keras 3 reads ``KERAS_BACKEND`` once, when it is first imported; ``select_backend`` sets
it before that and refuses a change afterwards. This package imports no backend itself:
``requested_backend`` and ``select_backend`` are safe in commands that only read the store.
Per concern, one small module: ``determinism`` (seeding and each backend's determinism
switch), ``distribution`` (``--distribute``), ``compiled`` (when compiled steps go stale).
"""

from __future__ import annotations

import importlib.util
import os
import sys

from psykedelic_cli.errors import PsykError

BACKENDS = ("tensorflow", "jax", "torch")
"""The Keras backends psyk runs on (``--backend``)."""
DEFAULT_BACKEND = "tensorflow"
_EXTRAS = {"tensorflow": "psykedelic", "jax": "psykedelic[jax]", "torch": "psykedelic[torch]"}


def requested_backend(backend: str | None = None) -> str:
    """``backend``, else ``KERAS_BACKEND``, else TensorFlow; PsykError (exit 2) for a name not in ``BACKENDS``."""
    name = backend if backend is not None else os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND
    if name not in BACKENDS:
        source = "--backend" if backend is not None else "KERAS_BACKEND"
        raise PsykError(f"{source} {name!r} is no Keras backend psyk runs on; choose one of {', '.join(BACKENDS)}")
    return name


def select_backend(backend: str | None = None) -> str:
    """Make ``backend`` (or ``requested_backend()``'s choice) the one Keras loads; returns its name.

    Sets ``KERAS_BACKEND`` before Keras is imported. PsykError (exit 2) when the backend's
    package is not installed (naming the extra to install) or when Keras already runs
    another backend in this process.
    """
    name = requested_backend(backend)
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != name:
            raise PsykError(
                f"Keras already runs on {keras.backend.backend()} in this process; cannot switch to {name} "
                "(start a new process, or set KERAS_BACKEND before importing keras)"
            )
        return name
    if importlib.util.find_spec(name) is None:  # each backend's package has its name
        raise PsykError(f"--backend {name}: {name} is not installed; `pip install '{install_hint(name)}'`")
    os.environ["KERAS_BACKEND"] = name
    return name


def install_hint(name: str) -> str:
    """What to ``pip install`` for backend ``name``."""
    return _EXTRAS[name]
