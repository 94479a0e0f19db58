"""RunRecorder writes results to a real store, lazily for frequent small updates."""

from psykedelic_cli.store import Store, new_run_document
from psykedelic_cli.store.runs import utc_now
from psykedelic_cli.training.recorder import PhaseTimer, RunRecorder


def test_lazy_results_wait_for_the_write_budget_and_finish_writes_everything(tmp_path):
    store = Store(tmp_path / "store.json")
    run_id = store.add_run(new_run_document({"model": "m", "dataset": "digits"}, source="train"))
    ticks = iter(range(1000))
    # Each clock reading is one tick later, so a write "takes" one tick; with budget 3 a lazy
    # result is written only once 3 ticks have passed since the last write ended.
    recorder = RunRecorder(store, run_id, budget=3.0, clock=lambda: float(next(ticks)))

    def stored():
        return store.get_run(run_id)["results"]

    recorder.put(learning_curve={"epoch": [1]}, lazy=True)  # tick 0: the first write, ends at tick 1
    assert stored()["learning_curve"] == {"epoch": [1]}
    recorder.put(learning_curve={"epoch": [1, 2]}, lazy=True)  # tick 2: deferred
    recorder.put(learning_curve={"epoch": [1, 2, 3]}, lazy=True)  # tick 3: deferred
    assert stored()["learning_curve"] == {"epoch": [1]}
    recorder.put(final={"accuracy": 0.5})  # an eager result carries the deferred one with it (ends at tick 5)
    assert stored()["learning_curve"] == {"epoch": [1, 2, 3]} and stored()["final"] == {"accuracy": 0.5}
    recorder.put(learning_curve={"epoch": [1, 2, 3, 4]}, lazy=True)  # tick 6: deferred
    recorder.put(learning_curve={"epoch": [1, 2, 3, 4, 5]}, lazy=True)  # tick 7: deferred
    assert stored()["learning_curve"]["epoch"] == [1, 2, 3]
    recorder.put(learning_curve={"epoch": [1, 2, 3, 4, 5, 6]}, lazy=True)  # tick 8: three ticks after, written
    assert stored()["learning_curve"]["epoch"] == [1, 2, 3, 4, 5, 6]
    recorder.put(learning_curve={"epoch": [1, 2, 3, 4, 5, 6, 7]}, lazy=True)
    recorder.finish("interrupted", "stopped")
    run = store.get_run(run_id)
    assert run["status"] == "interrupted" and run["error"] == "stopped"
    assert run["results"]["learning_curve"] == {"epoch": [1, 2, 3, 4, 5, 6, 7]}


def test_eager_budget_zero_writes_every_lazy_result(tmp_path):
    store = Store(tmp_path / "store.json")
    run_id = store.add_run(new_run_document({"model": "m"}, source="train"))
    recorder = RunRecorder(store, run_id, budget=0.0)
    for epoch in (1, 2, 3):
        recorder.put(learning_curve={"epoch": list(range(1, epoch + 1))}, lazy=True)
        assert store.get_run(run_id)["results"]["learning_curve"]["epoch"][-1] == epoch


def test_every_write_stamps_a_heartbeat_from_the_wall_clock(tmp_path, clock):
    store = Store(tmp_path / "store.json")
    run_id = store.add_run(new_run_document({"model": "m"}, source="train", now=clock()))
    ticks = iter(range(1000))
    recorder = RunRecorder(store, run_id, budget=3.0, clock=lambda: float(next(ticks)), wall_clock=clock)
    assert "heartbeat_at" not in store.get_run(run_id)
    recorder.put(learning_curve={"epoch": [1]}, lazy=True)  # written
    beat = clock.now
    run = store.get_run(run_id)
    assert run["heartbeat_at"] == run["updated_at"] == utc_now(beat)
    recorder.put(learning_curve={"epoch": [1, 2]}, lazy=True)  # deferred: no write, no heartbeat
    assert store.get_run(run_id)["heartbeat_at"] == utc_now(beat)
    recorder.put(final={"accuracy": 0.5})
    assert store.get_run(run_id)["heartbeat_at"] == utc_now(clock.now) != utc_now(beat)


def test_phase_timer_accumulates_per_phase():
    timer = PhaseTimer()
    with timer("training"):
        pass
    timer.add("training", 2.0)
    timer.add("comparison", 0.5)
    assert timer.seconds["training"] >= 2.0 and timer.seconds["comparison"] == 0.5
