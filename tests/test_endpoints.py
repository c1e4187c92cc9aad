"""The endpoint policy, on a real Redis, judging rounds sent to a real local receiver: how hard
an endpoint is pushed, when it is left alone, and when it is given up on."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from monitor.core.models import Subscription
from tests.helpers import SECRET, load, make_alerts, write_config
from workers.delivery.endpoints import (
    GONE_REASON,
    TURN_MARGIN_SECONDS,
    EndpointPolicy,
    Endpoints,
    EndpointStatus,
    Health,
    Verdict,
)
from workers.delivery.rounds import Round, sort_round
from workers.delivery.send import Deliverer


@dataclass
class Endpoint:
    """One subscription's endpoint as a worker sees it: its policy, and a client to send."""

    policy: EndpointPolicy
    subscription: Subscription
    deliverer: Deliverer

    def health(self) -> Health:
        return self.policy.endpoints.health(self.subscription)

    def send_round(self, count: int, attempt: int = 1) -> Round:
        """Send `count` alerts as a delivery job would, the endpoint's health permitting."""
        alerts = make_alerts(count)
        in_flight = self.policy.in_flight(self.health())
        outcomes = self.deliverer.send_all(
            self.subscription, alerts, in_flight, stop_after_failures=in_flight
        )
        attempts = len(self.policy.settings.retry_schedule_seconds)
        return sort_round(alerts, outcomes, attempt, attempts)

    def after_round(self, round_: Round, attempt: int = 1) -> Verdict:
        return self.policy.after_round(self.subscription, round_, attempt)


def endpoint(tmp_path, connection, url: str, settings: str = "") -> Endpoint:
    config = load(
        write_config(
            tmp_path / "config",
            subscriptions=[{"id": "hook", "url": url, "topics": ["*"], "secret": SECRET}],
            settings="[delivery]\ntimeout_seconds = 1\nretry_schedule_seconds = [0, 60, 600]\n"
            "max_in_flight = 2\n" + settings,
        )
    )
    settings_ = config.settings
    return Endpoint(
        EndpointPolicy(Endpoints(connection), settings_),
        config.subscriptions[0],
        Deliverer(settings_.delivery_timeout_seconds, settings_.max_in_flight_per_endpoint),
    )


def test_a_failing_endpoint_is_left_alone_then_probed_one_message_at_a_time(
    tmp_path, connection, http_server
):
    http_server.route("/hook", (503, {}, b"busy"))
    hook = endpoint(tmp_path, connection, http_server.url_for("/hook"))
    assert hook.health().status is EndpointStatus.OK
    assert hook.policy.in_flight(hook.health()) == 2

    round_ = hook.send_round(4)
    assert (len(round_.retry), len(round_.untried)) == (2, 2)  # two failures: none started after
    verdict = hook.after_round(round_)
    health = hook.health()
    assert verdict.disabled_reason is None and 0 <= verdict.delay <= 60  # full jitter
    assert health.status is EndpointStatus.FAILING
    assert abs(health.blocked_until - (time.time() + verdict.delay)) < 1
    assert hook.policy.in_flight(health) == 1


def test_a_delivery_ends_the_failing(tmp_path, connection, http_server):
    http_server.route("/hook", (503, {}, b"busy"))
    hook = endpoint(tmp_path, connection, http_server.url_for("/hook"))
    hook.after_round(hook.send_round(1))
    http_server.route("/hook", (204, {}, b""))

    assert hook.after_round(hook.send_round(1)) == Verdict()
    health = hook.health()
    assert health.status is EndpointStatus.OK and health.blocked_until == 0
    assert hook.policy.in_flight(health) == 2


def test_a_receiver_refusing_messages_is_not_a_failing_endpoint(tmp_path, connection, http_server):
    http_server.route("/hook", (400, {}, b"bad request"))
    hook = endpoint(tmp_path, connection, http_server.url_for("/hook"))
    round_ = hook.send_round(2)
    assert len(round_.failed) == 2
    assert hook.after_round(round_) == Verdict()
    assert hook.health().status is EndpointStatus.OK


def test_410_disables_the_endpoint_at_once(tmp_path, connection, http_server):
    http_server.route("/hook", (410, {}, b"gone"))
    hook = endpoint(tmp_path, connection, http_server.url_for("/hook"))
    verdict = hook.after_round(hook.send_round(3))
    health = hook.health()
    assert verdict == Verdict(disabled_reason=GONE_REASON)
    assert health.status is EndpointStatus.DISABLED and health.disabled_reason == GONE_REASON
    assert health.failing_since is None  # not a failed round: the receiver said what it wants


def test_an_endpoint_failing_longer_than_allowed_is_disabled(tmp_path, connection, http_server):
    http_server.route("/hook", (500, {}, b""))
    hook = endpoint(
        tmp_path, connection, http_server.url_for("/hook"), "disable_after_hours = 0.0001\n"
    )  # 0.36 s
    assert hook.after_round(hook.send_round(1)).disabled_reason is None
    time.sleep(0.5)
    verdict = hook.after_round(hook.send_round(1, attempt=2), attempt=2)
    assert verdict.disabled_reason == "failing for 0.0 hours"
    assert hook.health().status is EndpointStatus.DISABLED


def test_a_retry_after_longer_than_the_step_is_the_wait(tmp_path, connection, http_server):
    http_server.route("/hook", (429, {"retry-after": "300"}, b""))
    hook = endpoint(tmp_path, connection, http_server.url_for("/hook"))
    assert hook.after_round(hook.send_round(1)).delay == 300
    assert 295 < hook.health().blocked_for() <= 300


def test_the_wait_grows_with_the_endpoints_failed_rounds(tmp_path, connection):
    policy = endpoint(tmp_path, connection, "https://hooks.example/x").policy
    # Full jitter: each wait is random up to the step, so the steps show in many samples.
    first = [policy.backoff(attempt=1, failed_rounds=1, retry_after=0) for _ in range(200)]
    third = [policy.backoff(attempt=1, failed_rounds=2, retry_after=0) for _ in range(200)]
    assert max(first) <= 60 < max(third) <= 600
    assert max(policy.backoff(attempt=9, failed_rounds=9, retry_after=0) for _ in range(50)) <= 600
    assert policy.backoff(attempt=1, failed_rounds=1, retry_after=900) == 900


def test_a_turn_lasts_the_worst_case_of_its_batch(tmp_path, connection):
    policy = endpoint(tmp_path, connection, "https://hooks.example/x").policy
    # 5 messages, 2 at a time: 3 waves of a 1 s timeout (+1 s each), then the margin.
    assert policy.turn_seconds(5, 2) == 3 * 2 + TURN_MARGIN_SECONDS


def test_an_endpoint_status_is_its_string(tmp_path, connection):
    hook = endpoint(tmp_path, connection, "https://hooks.example/x")
    assert hook.health().status == "ok"
    assert json.dumps({"status": hook.health().status}) == '{"status": "ok"}'
