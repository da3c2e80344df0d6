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
