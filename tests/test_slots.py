"""Model slots and recent generations (``playground.slots``): a slot's backend and loading state, its
turn-taking (concurrency, the queue limit, giving up while waiting), and the bounded store of finished
generations that shares are made from."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from playground.backends.fake import FakeBackend
from playground.errors import BusyError, ModelError
from playground.params import GenerationParams
from playground.record import BackendSummary, Generation
from playground.registry import ModelSpec
from playground.slots import RECENT_LIMIT, ModelSlot, RecentGenerations, approx_bytes

SPEC = ModelSpec("fake", "fake", 1024)


def generation(generation_id: str) -> Generation:
    return Generation(id=generation_id, mode="complete", model="fake", created_at="", app_version="", inputs={},
                      raw_prompt="", prompt_version=None, params=GenerationParams(), backend=BackendSummary("fake"))


def until(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


class Waiter:
    """``slot.acquire`` on its own thread; ``outcome`` is "acquired" or the error it gave up with."""

    def __init__(self, slot: ModelSlot):
        self.slot, self.cancel, self.outcome = slot, threading.Event(), None
        self.thread = threading.Thread(target=self._wait, daemon=True)
        self.thread.start()

    def _wait(self) -> None:
        try:
            self.slot.acquire(self.cancel)
            self.outcome = "acquired"
        except BusyError as exc:
            self.outcome = exc

    def done(self, timeout_s: float = 5.0) -> object:
        self.thread.join(timeout_s)
        assert not self.thread.is_alive()
        return self.outcome


# -- the backend and its loading state -------------------------------------------------------


def test_a_loaded_slot_gives_its_backend_and_its_info():
    backend = FakeBackend(context_length=512)
    slot = ModelSlot(SPEC, backend)
    assert slot.require_backend() is backend
    assert slot.info() == backend.info()


def test_a_loading_slot_says_so_and_reports_the_specs_context():
    slot = ModelSlot(SPEC)
    slot.progress.step("weights", "Loading weights (3 of 7)")
    with pytest.raises(ModelError, match=r"fake is still loading \(Loading weights \(3 of 7\)\)"):
        slot.require_backend()
    info = slot.info()
    assert (info.model_id, info.context_length, info.loaded) == ("fake", 1024, False)


def test_a_slot_that_failed_to_load_says_why():
    slot = ModelSlot(SPEC)
    slot.progress.fail("out of memory")
    with pytest.raises(ModelError, match="fake failed to load: out of memory"):
        slot.require_backend()


# -- taking turns ----------------------------------------------------------------------------


def test_a_free_slot_is_taken_at_once_and_nobody_is_counted_waiting():
    slot = ModelSlot(SPEC, concurrency=2)
    slot.acquire(threading.Event())
    slot.acquire(threading.Event())
    assert slot.waiting == 0


def test_a_waiter_gets_the_model_when_it_is_released():
    slot = ModelSlot(SPEC)
    slot.acquire(threading.Event())
    waiter = Waiter(slot)
    assert until(lambda: slot.waiting == 1)
    time.sleep(0.02)
    assert waiter.outcome is None  # still waiting while the model is held
    slot.release()
    assert waiter.done() == "acquired" and slot.waiting == 0


def test_concurrency_lets_that_many_in_and_queues_the_next():
    slot = ModelSlot(SPEC, concurrency=2)
    first, second = Waiter(slot), Waiter(slot)
    assert first.done() == second.done() == "acquired"
    third = Waiter(slot)
    assert until(lambda: slot.waiting == 1)
    slot.release()
    assert third.done() == "acquired"


def test_a_full_queue_turns_the_next_request_away_at_once():
    slot = ModelSlot(SPEC, max_queue=1)
    slot.acquire(threading.Event())
    waiter = Waiter(slot)
    assert until(lambda: slot.waiting == 1)
    given_up = threading.Event()
    given_up.set()  # were it queued instead, it would give up as cancelled, not as busy
    with pytest.raises(BusyError, match="1 requests are already waiting for fake"):
        slot.acquire(given_up)
    assert slot.waiting == 1  # the refused request was never counted
    slot.release()
    assert waiter.done() == "acquired"


def test_cancelling_a_waiter_ends_its_wait_and_frees_its_place_in_the_queue():
    slot = ModelSlot(SPEC, max_queue=1)
    slot.acquire(threading.Event())
    waiter = Waiter(slot)
    assert until(lambda: slot.waiting == 1)
    waiter.cancel.set()
    outcome = waiter.done(timeout_s=1)
    assert isinstance(outcome, BusyError) and "Cancelled while waiting" in outcome.message
    assert slot.waiting == 0
    again = Waiter(slot)  # the place it held is free again
    assert until(lambda: slot.waiting == 1)
    slot.release()
    assert again.done() == "acquired"


# -- recent generations ----------------------------------------------------------------------


def test_recent_generations_keep_the_newest_up_to_their_limit():
    recent = RecentGenerations(limit=3)
    made = [generation(f"id-{i}") for i in range(5)]
    for item in made:
        recent.add(item)
    assert [recent.get(item.id) for item in made] == [None, None, *made[2:]]
    assert RecentGenerations().limit == RECENT_LIMIT


@pytest.mark.parametrize("generation_id", [None, 0, b"id-0", ["id-0"], {"id": "id-0"}, ("id-0",)])
def test_recent_get_of_anything_but_a_string_is_none(generation_id):
    recent = RecentGenerations()
    recent.add(generation("id-0"))
    assert recent.get(generation_id) is None
    assert recent.get("id-0") is not None


def test_recent_generations_stay_bounded_when_added_from_many_threads():
    recent = RecentGenerations(limit=50)
    ids = [[f"t{t}-{i}" for i in range(200)] for t in range(4)]

    def add(own: list[str]) -> None:
        for generation_id in own:
            recent.add(generation(generation_id))

    threads = [threading.Thread(target=add, args=(own,)) for own in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    kept = [i for own in ids for i in own if recent.get(i) is not None]
    assert len(kept) == 50


def _heavy_record(tmp_path, index: int) -> Generation:
    """The red team's heavy record: eight candidates with five alternatives per token."""
    from playground.config import Settings
    from tests.conftest import fake_playground

    backend = FakeBackend(outputs=[("x = compute(a, b)\n" * 120) + str(i) for i in range(8)])
    playground = fake_playground(Settings(data_dir=tmp_path / str(index)), backend)
    run = playground.start("complete", None, {"prompt": "x = "},
                           {"n": 8, "logprobs": 5, "temperature": 0.5, "max_new_tokens": 2000, "stop_loops": False})
    list(run)
    assert run.record is not None
    return run.record


def test_the_size_estimate_is_close_to_what_a_record_really_holds(tmp_path):
    import gc
    import pickle
    import tracemalloc

    record = _heavy_record(tmp_path, 0)
    blob = pickle.dumps(record)
    gc.collect()
    tracemalloc.start()
    try:
        copy = pickle.loads(blob)  # a fresh copy: every object and string of it newly allocated
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert copy.id == record.id and held > 4 * 2**20  # megabytes, as the red team measured
    assert 0.8 <= approx_bytes(record) / held <= 1.5


def test_recent_generations_are_bounded_by_size_not_only_count(tmp_path):
    heavy = _heavy_record(tmp_path, 1)
    size = approx_bytes(heavy)
    recent = RecentGenerations(limit=2000, max_bytes=3 * size)
    ids = []
    for n in range(6):
        record = replace(heavy, id=f"heavy-{n}")
        recent.add(record)
        ids.append(record.id)
    assert recent.bytes <= 3 * size
    assert [recent.get(i) is not None for i in ids] == [False, False, False, True, True, True]  # oldest out first
    recent.add(replace(heavy, id="heavy-5"))  # the same id again is counted once
    assert recent.bytes <= 3 * size and recent.get("heavy-4") is not None
