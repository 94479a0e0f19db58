"""Which Keras backend psyk runs on, and the little that must differ between backends.

Keras 3 reads ``KERAS_BACKEND`` once, when it is first imported; ``select_backend`` sets
it before that and refuses a change afterwards. This package imports no backend itself:
``select_backend`` and ``backend_versions`` are safe in commands that only read the store.
Per concern, one small module: ``determinism`` (seeding and each backend's determinism
switch), ``distribution`` (``--distribute``), ``compiled`` (when compiled steps go stale).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys

from psykedelic_cli.errors import PsykError

BACKENDS = ("tensorflow", "jax", "torch")
"""The Keras backends psyk runs on (``--backend``)."""
DEFAULT_BACKEND = "tensorflow"
_DISTRIBUTIONS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
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
    if importlib.util.find_spec(_DISTRIBUTIONS[name]) is None:
        package = _DISTRIBUTIONS[name]
        raise PsykError(f"--backend {name}: {package} is not installed; `pip install '{install_hint(name)}'`")
    os.environ["KERAS_BACKEND"] = name
    return name


def install_hint(name: str) -> str:
    """What to ``pip install`` for backend ``name``."""
    return _EXTRAS[name]


def active_backend() -> str:
    """The backend Keras runs on (imports Keras)."""
    import keras

    return keras.backend.backend()


def backend_versions(name: str) -> dict[str, str]:
    """``{"keras": …, name: …}``: the installed versions of Keras and of the backend's package (no import)."""
    versions = {}
    for package in ("keras", _DISTRIBUTIONS[name], *(("jaxlib",) if name == "jax" else ())):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
