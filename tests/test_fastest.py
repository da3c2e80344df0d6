"""serve/fastest.py: the quickest of several runners, each timed in turn."""

import time

import pytest

from lipseg_tf.serve.fastest import fastest


def test_fastest_picks_the_runner_that_takes_least_time():
    calls = {"idle": 0, "slow": 0}

    def idle():
        calls["idle"] += 1

    def slow():
        calls["slow"] += 1
        time.sleep(0.03)   # a busy machine may delay the idle one, but never by this much at its best

    chosen, seconds = fastest({"slow": slow, "idle": idle}, rounds=3)
    assert chosen == "idle" and seconds["slow"] >= 0.03 > seconds["idle"]
    assert calls == {"idle": 4, "slow": 4}   # one warm-up call each, then the rounds


def test_a_single_runner_is_not_timed_and_none_is_an_error():
    assert fastest({"only": lambda: pytest.fail("called")}) == ("only", {})
    with pytest.raises(ValueError, match="no runners"):
        fastest({})


def test_the_first_runner_is_kept_unless_another_is_faster_by_the_margin():
    """A clock that advances by each runner's cost: the choice depends on the times alone."""
    now = [0.0]

    def costs(seconds):
        def run():
            now[0] += seconds
        return run

    def clock():
        return now[0]

    runners = {"int8": costs(1.00), "dynamic": costs(0.90)}
    assert fastest(runners, rounds=2, margin=0.15, clock=clock)[0] == "int8"   # 10 % faster: not enough
    assert fastest(runners, rounds=2, margin=0.05, clock=clock)[0] == "dynamic"
    chosen, seconds = fastest(runners, rounds=2, clock=clock)
    assert chosen == "dynamic" and seconds == pytest.approx({"int8": 1.0, "dynamic": 0.9})
    runners["dynamic"] = costs(0.80)
    assert fastest(runners, rounds=2, margin=0.15, clock=clock)[0] == "dynamic"
