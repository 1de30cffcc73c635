"""The transition table of one supervised process."""

from __future__ import annotations

import pytest

from appliance.supervisor.states import TRANSITIONS, IllegalTransition, State, check_transition


def test_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(State)


@pytest.mark.parametrize(
    ("old", "new"),
    [(State.STOPPED, State.RUNNING), (State.RUNNING, State.STARTING), (State.STOPPING, State.RUNNING)],
)
def test_illegal_transition_raises(old: State, new: State) -> None:
    with pytest.raises(IllegalTransition, match=f"{old.value} -> {new.value}"):
        check_transition(old, new)


def test_allowed_transition_returns_the_new_state() -> None:
    assert check_transition(State.BACKOFF, State.STARTING) is State.STARTING
