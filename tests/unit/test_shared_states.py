"""shared/states.py: the job state machine, checked over every pair of statuses."""

from __future__ import annotations

import itertools

import pytest

from shared.states import (
    ACTIVE,
    TERMINAL,
    IllegalTransition,
    JobStatus,
    can_transition,
    check_transition,
    sources_of,
)

S = JobStatus
LEGAL: set[tuple[JobStatus, JobStatus]] = {
    (S.queued, S.running),
    (S.queued, S.cancelled),
    (S.queued, S.dead),
    (S.running, S.succeeded),
    (S.running, S.failed),
    (S.running, S.dead),
    (S.running, S.cancelled),
    (S.running, S.queued),
}
ALL_PAIRS = list(itertools.product(JobStatus, JobStatus))


def test_status_set_is_the_expected_one() -> None:
    assert {s.value for s in JobStatus} == {"queued", "running", "succeeded", "failed", "dead", "cancelled"}
    assert len(ALL_PAIRS) == 36


def test_terminal_and_active_partition_statuses() -> None:
    assert {S.succeeded, S.failed, S.dead, S.cancelled} == TERMINAL
    assert {S.queued, S.running} == ACTIVE
    assert set(JobStatus) == TERMINAL | ACTIVE
    assert not TERMINAL & ACTIVE


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS, ids=[f"{a}->{b}" for a, b in ALL_PAIRS])
def test_transition_table(current: JobStatus, target: JobStatus) -> None:
    legal = (current, target) in LEGAL
    assert can_transition(current, target) is legal
    if legal:
        check_transition(current, target)
    else:
        with pytest.raises(IllegalTransition, match=f"{current} -> {target}"):
            check_transition(current, target)


def test_illegal_transition_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        check_transition(S.succeeded, S.running)


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_terminal_states_have_no_exits(terminal: JobStatus) -> None:
    assert not any(can_transition(terminal, target) for target in JobStatus)


def test_no_self_transitions() -> None:
    assert not any(can_transition(s, s) for s in JobStatus)


@pytest.mark.parametrize("target", list(JobStatus))
def test_sources_of_matches_table(target: JobStatus) -> None:
    expected = frozenset(src for src, dst in LEGAL if dst == target)
    assert sources_of(target) == expected


def test_sources_of_spot_checks() -> None:
    assert sources_of(S.cancelled) == {S.queued, S.running}
    assert sources_of(S.dead) == {S.queued, S.running}
    assert sources_of(S.succeeded) == {S.running}
    assert sources_of(S.queued) == {S.running}
    assert sources_of(S.running) == {S.queued}
    assert isinstance(sources_of(S.failed), frozenset)
