"""What a worker process holds between jobs: config, Redis, and each step's long-lived object.

`newsmon worker` installs it at start; a job run by any other RQ worker (`rq worker`) builds
it on first use from $NEWSMON_CONFIG and the job's own Redis connection.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
import structlog
from rq import get_current_job

from monitor.core.config import Config, config_dir, load_config
from monitor.core.models import Subscription
from monitor.core.reload import reloaded
from monitor.core.subscriptions import Subscriptions
from workers.delivery.deadletters import DeadLetters
from workers.delivery.digests import Digests
from workers.delivery.dispatch import Dispatcher
from workers.delivery.endpoints import EndpointPolicy, Endpoints
from workers.delivery.messages import MessageLog
from workers.delivery.send import Deliverer
from workers.ml import pair_model
from workers.ml.encoder import EncoderUnavailable, SentenceEncoder, shipped
from workers.pipeline.classify import Classifier
from workers.pipeline.dedupe import Deduper
from workers.pipeline.stories import Stories


@dataclass
class Runtime:
    config: Config
    connection: redis.Redis
    deduper: Deduper
    # One sentence vector per entry serves story matching and the topic model; None when
    # neither is on.
    encoder: SentenceEncoder | None
    classifier: Classifier
    stories: Stories
    dead_letters: DeadLetters
    digests: Digests
    endpoints: Endpoints
    subscriptions: Subscriptions  # the file's and the API's, refreshed every few seconds
    dispatcher: Dispatcher

    @classmethod
    def build(cls, config: Config, connection: redis.Redis) -> Runtime:
        settings = config.settings
        endpoints = Endpoints(connection)
        dead_letters = DeadLetters(connection, settings.dead_letter_seconds)
        subscriptions = Subscriptions(config, connection)
        window_seconds = settings.dedupe_window_seconds
        encoder = _encoder() if settings.story_probability or config.topic_model else None
        return cls(
            config=config,
            connection=connection,
            deduper=Deduper(
                connection,
                window_seconds,
                settings.near_duplicate_similarity,
                pair_model.shipped(settings.story_probability)
                if encoder and settings.story_probability
                else None,
            ),
            encoder=encoder,
            classifier=Classifier(config.topics, config.topic_model if encoder else None),
            stories=Stories(connection, window_seconds),
            dead_letters=dead_letters,
            digests=Digests(connection, settings.delivery_timeout_seconds),
            endpoints=endpoints,
            subscriptions=subscriptions,
            dispatcher=Dispatcher(
                connection,
                settings,
                subscriptions,
                endpoints,
                EndpointPolicy(endpoints, settings),
                Deliverer(
                    settings.delivery_timeout_seconds,
                    settings.max_in_flight_per_endpoint,
                    settings,
                ),
                MessageLog(connection),
                dead_letters,
            ),
        )

    def subscription(self, subscription_id: str) -> Subscription | None:
        return self.subscriptions.get(subscription_id)


def _encoder() -> SentenceEncoder | None:
    """The shipped encoder, or None (rules alone, no story matching across outlets) when its
    weights cannot be loaded: a worker that cannot read meaning still dedupes and alerts."""
    try:
        return shipped()
    except EncoderUnavailable as exc:
        structlog.get_logger().error(
            "encoder.unavailable", reason=str(exc), running="topic rules alone"
        )
        return None


_current: Runtime | None = None


def install(runtime: Runtime) -> None:
    global _current
    _current = runtime


def installed() -> Runtime | None:
    """The runtime `newsmon worker` installed, if any (a plain `rq worker` has none until
    its first job)."""
    return _current


def reload() -> None:
    """The installed runtime built again from its config folder read again; kept as it is
    when the folder does not validate (monitor/core/reload.py)."""
    running = installed()
    if running and (config := reloaded(running.config)):
        install(Runtime.build(config, running.connection))


def current() -> Runtime:
    global _current
    if _current is None:
        _current = Runtime.build(load_config(config_dir(None)), get_current_job().connection)
    return _current
