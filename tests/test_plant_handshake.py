"""The PLC handshake core without a protocol: one answer per trigger, in order; busy, buffer-full, ack and
recipe errors; counters and states; thread safety."""

from __future__ import annotations

import threading
from dataclasses import replace
from statistics import mean

import pytest
from plant_support import GatedInspect, failing_inspect, fake_inspect, presented_seq, wait_until

from inspection.plant.handshake import PlcHandshake
from inspection.plant.records import ErrorCode, HandshakeError, StationState


@pytest.fixture
def core():
    c = PlcHandshake(fake_inspect, depth=3, recipes={1: "flange", 2: "plate"})
    c.start()
    yield c
    c.stop()


def test_every_trigger_answered_once_in_order_with_its_sequence_and_part_id(core):
    results = []
    for i in range(1, 51):
        answer = core.trigger(f"P{i}")
        assert answer.sequence == i and answer.error == ErrorCode.NONE
        wait_until(core, lambda i=i: presented_seq(core) == i, what=f"result {i}")
        results.append(core.acknowledge(i))
    assert [r.sequence for r in results] == list(range(1, 51))
    assert [r.part_id for r in results] == [f"P{i}" for i in range(1, 51)]
    assert [r.verdict for r in results[:2]] == ["NG", "OK"]
    assert core.snapshot().presented is None and core.snapshot().buffered == 0


def test_trigger_while_inspecting_gets_a_busy_error_result_after_the_running_one():
    gated = GatedInspect()
    core = PlcHandshake(gated, depth=8)
    core.start()
    try:
        assert core.trigger("A").error == ErrorCode.NONE
        assert gated.started.wait(5)
        assert core.snapshot().state == StationState.BUSY and not core.snapshot().ready
        busy = core.trigger("B")
        assert busy.error == ErrorCode.BUSY and busy.accepted and busy.sequence == 2
        assert core.snapshot().presented is None, "the busy answer must not overtake result 1"
        gated.release()
        wait_until(core, lambda: presented_seq(core) == 1)
        first = core.acknowledge(1)
        assert first.verdict == "NG" and first.error == ErrorCode.NONE
        second = core.acknowledge(0)
        assert (second.sequence, second.verdict, second.error, second.part_id) == (2, "ERROR", ErrorCode.BUSY, "B")
        assert [t.sequence for t in gated.seen] == [1], "the busy trigger must not be inspected"
    finally:
        gated.release(5)
        core.stop()


def test_full_buffer_sets_busy_and_refuses_without_overwriting(core):
    for i in range(1, 4):
        core.trigger(f"P{i}")
        wait_until(core, lambda i=i: core.snapshot().counters.ok + core.snapshot().counters.ng == i)
    snap = core.snapshot()
    assert snap.buffered == 3 and snap.busy and snap.state == StationState.BUSY and not snap.ready
    refused = core.trigger("P4")
    assert (refused.sequence, refused.error, refused.accepted) == (4, ErrorCode.BUFFER_FULL, False)
    snap = core.snapshot()
    assert snap.buffered == 3 and snap.presented is not None and snap.presented.sequence == 1
    assert snap.last_error == ErrorCode.BUFFER_FULL and "acknowledge" in snap.last_error_message
    assert snap.counters.refused == 1 and snap.counters.triggers == 4
    assert [core.acknowledge(0).sequence for _ in range(3)] == [1, 2, 3]
    assert core.snapshot().ready
    assert core.trigger("P5").error == ErrorCode.NONE


def test_unknown_and_out_of_order_acks_are_defined_errors_that_change_nothing(core):
    with pytest.raises(HandshakeError) as empty:
        core.acknowledge(0)
    assert empty.value.code == ErrorCode.UNKNOWN_SEQUENCE
    core.trigger("A")
    wait_until(core, lambda: presented_seq(core) == 1)
    core.trigger("B")
    wait_until(core, lambda: core.snapshot().counters.ok + core.snapshot().counters.ng == 2)
    with pytest.raises(HandshakeError) as unknown:
        core.acknowledge(99)
    assert unknown.value.code == ErrorCode.UNKNOWN_SEQUENCE and "99" in str(unknown.value)
    assert core.snapshot().last_error == ErrorCode.UNKNOWN_SEQUENCE
    with pytest.raises(HandshakeError) as order:
        core.acknowledge(2)
    assert order.value.code == ErrorCode.ACK_OUT_OF_ORDER and "acknowledge 1 first" in str(order.value)
    assert core.snapshot().buffered == 2 and presented_seq(core) == 1
    assert core.acknowledge(1).sequence == 1
    assert core.snapshot().last_error == ErrorCode.NONE


def test_camera_error_and_inspection_exception_are_error_results_and_the_station_goes_on():
    core = PlcHandshake(failing_inspect, depth=8)
    core.start()
    try:
        for part in ("camera", "boom", "fine"):
            core.trigger(part)
            wait_until(core, lambda: core.snapshot().state == StationState.READY)
        got = [core.acknowledge(0) for _ in range(3)]
        assert [(r.verdict, r.error) for r in got] == [("ERROR", ErrorCode.CAMERA),
                                                       ("ERROR", ErrorCode.INSPECTION_FAILED), ("NG", ErrorCode.NONE)]
        assert "device vanished" in got[0].message and "model exploded" in got[1].message
        c = core.snapshot().counters
        assert (c.triggers, c.errors, c.ok, c.ng) == (3, 2, 0, 1)
    finally:
        core.stop()


def test_counters_match_the_results(core):
    got = []
    for i in range(1, 11):
        core.trigger(f"P{i}")
        wait_until(core, lambda i=i: presented_seq(core) == i)
        got.append(core.acknowledge(i))
    c = core.snapshot().counters
    assert (c.triggers, c.ok, c.ng, c.errors) == (10, 5, 5, 0)
    times = [r.processing_ms for r in got]
    assert c.processing_ms_min == min(times) and c.processing_ms_max == max(times)
    assert c.processing_ms_mean == pytest.approx(mean(times))


def test_states_preoperational_ready_error():
    core = PlcHandshake(fake_inspect)
    assert core.snapshot().state == StationState.PREOPERATIONAL
    refused = core.trigger("early")
    assert refused.error == ErrorCode.NOT_READY and "not started" in refused.message
    core.start()
    try:
        assert core.snapshot().state == StationState.READY
        core.set_fault("outbox not writable")
        assert core.snapshot().state == StationState.ERROR
        assert "outbox not writable" in core.trigger("x").message
        core.set_fault(None)
        assert core.trigger("y").error == ErrorCode.NONE
    finally:
        core.stop()
    assert core.snapshot().state == StationState.PREOPERATIONAL


def test_recipe_change_applies_from_the_next_trigger_and_unknown_recipe_is_refused():
    gated = GatedInspect()
    core = PlcHandshake(gated, recipes={1: "flange", 2: "plate"})
    core.start()
    try:
        core.trigger("A")
        assert gated.started.wait(5)
        assert core.select_recipe(2) == "plate"
        gated.release()
        wait_until(core, lambda: presented_seq(core) == 1)
        assert core.acknowledge(1).recipe == 1, "the running inspection keeps its recipe"
        core.trigger("B")
        gated.release()
        wait_until(core, lambda: presented_seq(core) == 2)
        assert core.acknowledge(2).recipe == 2
        with pytest.raises(HandshakeError) as bad:
            core.select_recipe(7)
        assert bad.value.code == ErrorCode.UNKNOWN_RECIPE and "[1, 2]" in str(bad.value)
        assert core.snapshot().recipe == 2
    finally:
        gated.release(5)
        core.stop()


def test_bad_part_id_is_refused_with_its_code(core):
    answer = core.trigger("é" * 3)
    assert answer.error == ErrorCode.BAD_PART_ID and not answer.accepted
    assert core.trigger("x" * 33).error == ErrorCode.BAD_PART_ID
    assert core.trigger("x" * 32).error == ErrorCode.NONE


def test_concurrent_triggers_and_acks_answer_each_sequence_exactly_once():
    core = PlcHandshake(fake_inspect, depth=4)
    core.start()
    answers, acked, done = [], [], threading.Event()
    lock = threading.Lock()

    def plc(name: str) -> None:
        for i in range(100):
            a = core.trigger(f"{name}{i}")
            with lock:
                answers.append(a)

    def acker() -> None:
        while not done.is_set() or core.snapshot().buffered:
            snap = core.snapshot()
            if snap.presented is not None:
                acked.append(core.acknowledge(snap.presented.sequence))
            else:
                core.wait_for_change(snap.version, 0.2)

    threads = [threading.Thread(target=plc, args=(n,)) for n in "ABC"]
    ack_thread = threading.Thread(target=acker)
    ack_thread.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    ack_thread.join(10)
    core.stop()
    assert not ack_thread.is_alive()
    accepted = sorted(a.sequence for a in answers if a.accepted)
    refused = {a.sequence for a in answers if not a.accepted}
    assert sorted(a.sequence for a in answers) == list(range(1, 301))
    assert [r.sequence for r in acked] == accepted, "results must come in sequence order, each once"
    assert not refused & set(accepted)
    c = core.snapshot().counters
    assert c.triggers == 300 and c.ok + c.ng + c.errors == 300 and c.refused == len(refused)


def test_an_inspect_that_answers_for_another_sequence_is_an_inspection_error():
    def confused(trigger):
        return fake_inspect(replace(trigger, sequence=trigger.sequence + 1))

    core = PlcHandshake(confused)
    core.start()
    try:
        core.trigger("A")
        wait_until(core, lambda: core.snapshot().presented is not None)
        result = core.acknowledge(1)
        assert (result.sequence, result.error) == (1, ErrorCode.INSPECTION_FAILED)
        assert "sequence 2 for trigger 1" in result.message
    finally:
        core.stop()


def test_wait_answered_returns_once_the_trigger_has_its_result():
    """What trigger mode's publish stage waits for before it writes a result's images."""
    gated = GatedInspect()
    core = PlcHandshake(gated)
    core.start()
    try:
        seq = core.trigger("W-1").sequence
        assert gated.started.wait(5)
        assert core.wait_answered(seq, 0.05) is False, "still inspecting: not answered"
        waiter: list[bool] = []
        t = threading.Thread(target=lambda: waiter.append(core.wait_answered(seq, 10)))
        t.start()
        gated.release()
        t.join(10)
        assert waiter == [True] and core.result_of(seq) is not None
        assert core.wait_answered(seq + 1, 0.01) is False, "a trigger never given is never answered"
    finally:
        gated.release(5)
        core.stop()
