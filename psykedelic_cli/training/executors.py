"""Running a sweep's runs: in turn in this process (``local``) or as Ray tasks (``ray``), one writer.

Workers never open the store. A worker trains one *task* (runs that share a first stage,
``branching.first_stage_groups``) with a ``RelayStore`` in place of the store: each write the
flow makes (a new run document, its progressive results, its end) becomes a message. The
driver (``SweepDriver``), the one process that writes the store, applies the messages in
order, so the store stays correct on any filesystem, shared ones where locks do not work
included. When a task ends without ending its runs (its worker was killed, its node lost)
or the sweep is stopped, the driver marks them ``interrupted``: no run is left ``running``.

Ray is optional (``pip install 'psykedelic[ray]'``) and imported only by ``run_on_ray``.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from psykedelic_cli.errors import PsykError, Terminated, run_outcome
from psykedelic_cli.store.runs import updated, utc_now

Message = tuple
"""``("add", [run documents], [plan indices])`` or ``("update", run id, {update_run keywords})``."""

Task = list
"""``[(plan index, TrainConfig), …]``: runs that share a first stage, trained by one worker."""


class RelayStore:
    """What the flow writes to in a worker: the store's writing methods, each one a message to ``send``.

    The flow adds a task's runs in one ``add_runs`` call, in the task's order, so the i-th document
    is the run of ``indices[i]``. ``get_run`` answers from the worker's own copy.
    """

    def __init__(self, send: Callable[[Message], None], indices: list[int]):
        self.send = send
        self.indices = indices
        self.docs: dict[str, dict] = {}

    def add_runs(self, docs: list[dict]) -> list[str]:
        for doc in docs:
            self.docs[doc["id"]] = copy.deepcopy(doc)
        self.send(("add", docs, self.indices[:len(docs)]))
        return [doc["id"] for doc in docs]

    def add_run(self, doc: dict) -> str:
        return self.add_runs([doc])[0]

    def update_run(self, run_id: str, **changes) -> dict:
        self.send(("update", run_id, changes))
        return updated(self.docs[run_id], **copy.deepcopy(changes))

    def get_run(self, run_id: str, **_) -> dict:
        return copy.deepcopy(self.docs[run_id])


@functools.lru_cache(maxsize=2)
def _dataset(name: str, data_dir: str | None):
    from psykedelic_cli.data import load_dataset

    return load_dataset(name, data_dir=data_dir)


def run_task(task: Task, send: Callable[[Message], None]) -> str | None:
    """Train the runs of ``task`` (one first stage), every store write sent to ``send``; returns None,
    or the first line of the error that failed a run (its runs are recorded ``failed`` already)."""
    from psykedelic_cli.training.flow import train_group

    configs = [config for _, config in task]
    store = RelayStore(send, [index for index, _ in task])
    try:
        dataset = _dataset(configs[0].dataset, None if configs[0].data_dir is None else str(configs[0].data_dir))
        train_group(configs, store, dataset)
    except Exception as exc:  # one failing task never stops the sweep
        return exc.args[0] if isinstance(exc, PsykError) else run_outcome(exc)[1]
    return None


@dataclass
class RunState:
    """What the driver knows of one started run."""

    index: int
    doc: dict
    epochs: int = 0
    unsaved: str | None = None
    """Why the store refused a write of this run (it is then kept only here, and at the end in a file)."""


@dataclass
class SweepDriver:
    """The single writer of a sweep: applies workers' messages to ``store`` and keeps every run's state.

    ``on_change(driver)`` is called after each message (the progress display). A write the store
    refuses (a full disk, a lost mount) leaves the run here, to be kept in a file (``keep_unsaved``).
    """

    store: object
    on_change: Callable[["SweepDriver"], None] | None = None
    runs: dict[str, RunState] = field(default_factory=dict)
    task_errors: dict[int, str] = field(default_factory=dict)
    """Plan index -> why its task failed before its run existed (no store record)."""

    def handle(self, message: Message) -> None:
        if message[0] == "add":
            _, docs, indices = message
            for doc, index in zip(docs, indices):
                self.runs[doc["id"]] = RunState(index, copy.deepcopy(doc))
            self._write(lambda: self.store.add_runs(copy.deepcopy(docs)), [doc["id"] for doc in docs])
        else:
            _, run_id, changes = message
            state = self.runs[run_id]
            updated(state.doc, **copy.deepcopy(changes))
            curve = (changes.get("results") or {}).get("learning_curve")
            if curve:
                state.epochs = len(curve.get("epoch", []))
            self._write(lambda: self.store.update_run(run_id, **changes), [run_id])
        if self.on_change is not None:
            self.on_change(self)

    def _write(self, write: Callable[[], object], run_ids: list[str]) -> None:
        if any(self.runs[run_id].unsaved for run_id in run_ids):
            return  # the store lost track of it: it is kept whole at the end instead
        try:
            write()
        except (PsykError, OSError) as exc:
            for run_id in run_ids:
                self.runs[run_id].unsaved = str(exc)

    def end_unfinished(self, error: str, indices: set[int] | None = None) -> list[str]:
        """Mark the runs still ``running`` (of the plan ``indices``; all when None) ``interrupted``
        with ``error``, their results kept; returns their ids."""
        ended = []
        for run_id, state in self.runs.items():
            if state.doc.get("status") == "running" and (indices is None or state.index in indices):
                self.handle(("update", run_id, {"status": "interrupted", "error": error}))
                ended.append(run_id)
        return ended

    def task_ended(self, task: Task, error: str | None, lost: str | None = None) -> None:
        """A task returned (``error``: what failed a run of it) or was lost (``lost``: why): its runs not
        ended are marked interrupted; runs it never started get the reason in ``task_errors``."""
        indices = {index for index, _ in task}
        self.end_unfinished(f"interrupted: {lost or 'its task ended without ending it'}", indices)
        started = {state.index for state in self.runs.values()}
        for index in indices - started:
            self.task_errors[index] = lost or error or "not started"
        if self.on_change is not None:
            self.on_change(self)

    def keep_unsaved(self, folder: Path) -> list[Path]:
        """Each run the store refused, written whole to ``psyk-run-<id>.json`` (``flow.keep_elsewhere``)."""
        import tempfile

        from psykedelic_cli.training.flow import keep_elsewhere

        return [keep_elsewhere({**state.doc, "updated_at": utc_now()}, [folder, Path(tempfile.gettempdir())])
                for state in self.runs.values() if state.unsaved]


def run_locally(tasks: list[Task], driver: SweepDriver) -> None:
    """The tasks in turn, in this process (Ctrl-C: the run in progress and the unstarted runs of its
    task end interrupted, recorded by the flow through the driver)."""
    for task in tasks:
        error = run_task(task, driver.handle)
        driver.task_ended(task, error)


@dataclass
class RayOptions:
    address: str | None = None
    """A running Ray cluster (``ray://host:10001``, ``auto``); None: a local instance on this machine."""
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0
    num_cpus: int | None = None
    """CPUs of a local instance (None: all of this machine's)."""
    poll_seconds: float = 0.2


def _ray_task(task: Task, queue) -> str | None:
    return run_task(task, queue.put)


def ray_started(options: RayOptions) -> float:
    """Start (or join) Ray unless this process already has; returns the seconds it took."""
    try:
        import ray
    except ImportError:
        raise PsykError("--executor ray needs Ray: pip install 'psykedelic[ray]'") from None
    start = time.perf_counter()
    if not ray.is_initialized():
        # ray.init installs its own SIGTERM handler (log, exit 1); a sweep keeps psyk's (its runs end
        # interrupted, exit 143), as every long command does.
        main = threading.current_thread() is threading.main_thread()  # only it may set handlers
        handlers = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGHUP)} if main else {}
        try:
            ray.init(address=options.address, num_cpus=None if options.address else options.num_cpus,
                     include_dashboard=False, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise PsykError(f"--executor ray could not start or join Ray ({options.address or 'local'}): "
                            f"{str(exc).splitlines()[0]}") from None
        finally:
            for number, handler in handlers.items():
                if handler is not None:
                    signal.signal(number, handler)
    return time.perf_counter() - start


def run_on_ray(tasks: list[Task], driver: SweepDriver, options: RayOptions) -> None:
    """Every task as a Ray task (``cpus_per_run`` and ``gpus_per_run``: its runs train one after another;
    no retries: a lost worker's runs end interrupted); the messages come back through a Ray queue and
    the driver writes them. Ctrl-C or a termination signal cancels every task, marks the unfinished runs
    interrupted and ends the sweep as they do (``Terminated`` for a signal, though Ray's waits turn it
    into a KeyboardInterrupt)."""
    import ray
    from ray.util.queue import Queue

    ray_started(options)
    queue = Queue(actor_options={"num_cpus": 0})
    remote = ray.remote(_ray_task)
    pending = {}
    for task in tasks:
        backend = getattr(task[0][1], "backend", None)
        runtime_env = {"env_vars": {"KERAS_BACKEND": backend}} if backend else None
        ref = remote.options(num_cpus=options.cpus_per_run, num_gpus=options.gpus_per_run, max_retries=0,
                             runtime_env=runtime_env).remote(task, queue)  # its runs train one after another
        pending[ref] = task
    with _signals_noted() as received:
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=options.poll_seconds)
                _drain(queue, driver)  # a task's messages are all queued before it returns (put waits)
                for ref in ready:
                    task = pending.pop(ref)
                    try:
                        driver.task_ended(task, ray.get(ref))
                    except ray.exceptions.RayError as exc:
                        driver.task_ended(task, None, lost=_lost(exc))
        except BaseException as exc:
            for ref in pending:
                ray.cancel(ref, force=True)
            _drain(queue, driver)
            if received and not isinstance(exc, Terminated):
                # Ray turns what a signal handler raises inside its calls into a plain KeyboardInterrupt
                raise Terminated(received[0]) from exc
            raise
        finally:
            ray.kill(queue.actor)


@contextlib.contextmanager
def _signals_noted():
    """Yield a list of the SIGTERM/SIGHUP numbers received meanwhile, each noted before its handler
    (psyk's raises ``Terminated``) runs; the handlers as they were afterwards."""
    received: list[int] = []
    previous = {}
    if threading.current_thread() is threading.main_thread():  # only it may set handlers
        for number in (signal.SIGTERM, signal.SIGHUP):
            handler = signal.getsignal(number)
            if callable(handler):
                previous[number] = handler
                signal.signal(number, functools.partial(_note, received, handler))
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _note(received: list, handler, number, frame) -> None:
    received.append(number)
    handler(number, frame)


def _drain(queue, driver: SweepDriver) -> None:
    size = queue.qsize()
    if size:
        for message in queue.get_nowait_batch(size):
            driver.handle(message)


def _lost(exc: BaseException) -> str:
    import ray

    if isinstance(exc, ray.exceptions.WorkerCrashedError):
        return "its Ray worker died (WorkerCrashedError)"
    if isinstance(exc, ray.exceptions.NodeDiedError):
        return "its Ray node died"
    return f"Ray lost its task ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"


def tasks_of(runs: list) -> list[Task]:
    """The planned ``runs`` (``sweep.PlannedRun``) as tasks: runs that share a first stage together."""
    from psykedelic_cli.training.branching import first_stage_groups

    by_config = {id(run.config): run.index for run in runs}
    groups = first_stage_groups([run.config for run in runs])
    return [[(by_config[id(config)], config) for config in group] for group in groups]



def execute(tasks: list[Task], driver: SweepDriver, executor: str, options: RayOptions | None = None) -> None:
    """The tasks on ``executor`` (``local`` or ``ray``); whatever stops the sweep (Ctrl-C, a signal, an
    error of the driver) first marks every unfinished run ``interrupted`` (its results kept)."""
    try:
        if executor == "ray":
            run_on_ray(tasks, driver, options or RayOptions())
        else:
            run_locally(tasks, driver)
    except BaseException as exc:
        status, error = run_outcome(exc)
        driver.end_unfinished(error if status == "interrupted" else f"interrupted: the sweep stopped ({error})")
        raise
