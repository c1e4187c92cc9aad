"""Sorting one round's outcomes by what becomes of each alert: a pure function, called directly."""

from __future__ import annotations

from tests.helpers import make_alerts
from workers.delivery.outcome import DeliveryStatus, Outcome
from workers.delivery.rounds import sort_round

DELIVERED = Outcome(DeliveryStatus.DELIVERED, http_status=200)
BUSY = Outcome(DeliveryStatus.RETRY, "HTTP 503", 503)
REFUSED = Outcome(DeliveryStatus.FAILED, "HTTP 400", 400)
GONE = Outcome(DeliveryStatus.FAILED, "HTTP 410", 410)


def test_each_alert_goes_where_its_outcome_sends_it():
    alerts = make_alerts(5)
    round_ = sort_round(alerts, [BUSY, DELIVERED, None, REFUSED, BUSY], attempt=1, attempts=3)
    assert round_.delivered == [(alerts[1], DELIVERED)]
    assert round_.retry == [(alerts[0], BUSY), (alerts[4], BUSY)]
    assert round_.failed == [(alerts[3], REFUSED)]
    assert round_.dead == []
    assert round_.untried == [alerts[2]]
    assert round_.pending == [alerts[0], alerts[4], alerts[2]]
    assert round_.counts() == {
        "alerts_delivered": 1,
        "alerts_retried": 2,
        "alerts_failed": 1,
        "alerts_dead": 0,
    }


def test_a_retryable_failure_at_the_last_attempt_is_dead():
    alerts = make_alerts(2)
    round_ = sort_round(alerts, [BUSY, None], attempt=3, attempts=3)
    assert round_.retry == [] and round_.dead == [(alerts[0], BUSY)]
    assert round_.untried == [alerts[1]]  # never sent: the last attempt is still its own
    assert round_.pending == [alerts[1]]


def test_a_410_among_the_refusals_means_the_endpoint_is_gone():
    alerts = make_alerts(2)
    assert not sort_round(alerts, [REFUSED, BUSY], attempt=1, attempts=3).gone
    assert sort_round(alerts, [REFUSED, GONE], attempt=1, attempts=3).gone


def test_the_longest_retry_after_of_the_retried_alerts_counts():
    alerts = make_alerts(3)
    outcomes = [
        Outcome(DeliveryStatus.RETRY, "HTTP 429", 429, retry_after=30.0),
        Outcome(DeliveryStatus.RETRY, "HTTP 429", 429, retry_after=120.0),
        BUSY,
    ]
    assert sort_round(alerts, outcomes, attempt=1, attempts=3).retry_after == 120.0
    # At the last attempt nothing is retried, so no receiver's wait applies.
    assert sort_round(alerts, outcomes, attempt=3, attempts=3).retry_after == 0.0
    assert sort_round(alerts, [DELIVERED, None, REFUSED], attempt=1, attempts=3).retry_after == 0


def test_statuses_are_their_strings():
    assert DeliveryStatus.RETRY == "retry" and f"{DeliveryStatus.DELIVERED}" == "delivered"
