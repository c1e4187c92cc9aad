"""Every Redis key newsmon uses, built in one place. All live under the `newsmon:` prefix.

Bounds: per-feed state is one hash, one schedule entry, and a seen-set and digest hash
trimmed to `seen_per_feed`; the three keys expire a week after the feed's next due time
(every poll pushes that on), and a feed gone from feeds.toml loses them and its schedule
entry a grace period after it left (schedule.py);
dedupe keys expire with the dedupe window; one endpoint hash per subscription; dead letters
are trimmed to `dead_letter_days` and to DEAD_LETTERS_KEPT; API subscriptions are one
hash field each; a subscription's recent messages are trimmed to MESSAGES_KEPT and expire
after MESSAGE_DAYS, each with at most ATTEMPTS_KEPT attempts.
RQ's own keys (`rq:*`) hold the queues named below.
"""

PREFIX = "newsmon:"
ENTRIES_QUEUE = "newsmon-entries"
DELIVERIES_QUEUE = "newsmon-deliveries"
DEAD_LETTERS_KEPT = 10_000


def feed_state(feed_name: str) -> str:
    """Hash: etag, last_modified, last_status, last_fetched, errors, new_count, first_fetched,
    redirect and WebSub state."""
    return f"{PREFIX}feed:{feed_name}"


def feed_seen(feed_name: str) -> str:
    """Sorted set: item keys already enqueued, scored by when last seen in the feed; trimmed
    to `seen_per_feed`, oldest first."""
    return f"{PREFIX}feed:{feed_name}:seen"


def feed_digests(feed_name: str) -> str:
    """Hash: item key -> digest of its title and summary, to notice edits; same keys as seen."""
    return f"{PREFIX}feed:{feed_name}:digests"


def feed_keys(feed_name: str) -> list[str]:
    """A feed's own keys (all but its schedule entry): what expires, and what a removed feed
    loses once its grace period is over."""
    return [feed_state(feed_name), feed_seen(feed_name), feed_digests(feed_name)]


SCHEDULE = f"{PREFIX}schedule"  # sorted set: feed name -> when it is next due (unix time)
# Sorted set: feed name -> when a poller first found it gone from feeds.toml; a feed leaves it
# when a poller has it configured again, or when its keys are dropped after the grace period.
FEEDS_REMOVED = f"{PREFIX}feeds:removed"


def dedupe_exact(kind: str, digest: str) -> str:
    """String -> the first entry id with this canonical link / text / title."""
    return f"{PREFIX}dd:{kind}:{digest}"


def dedupe_band(band: int, digest: str) -> str:
    """String -> the first entry id whose signature has this value in this LSH band."""
    return f"{PREFIX}dd:b{band}:{digest}"


def dedupe_doc(entry_id: str) -> str:
    """String: story id, headline facts, MinHash signature, a short text's shingles
    (dedupe.pack_doc)."""
    return f"{PREFIX}dd:doc:{entry_id}"


def dedupe_meaning(hour: int) -> str:
    """String: the records (entry id, int8 sentence vector) of the stories that began in this
    hour (unix time // 3600), appended; expires with the dedupe window."""
    return f"{PREFIX}dedupe:meaning:{hour}"


def dedupe_story_languages(story_id: str) -> str:
    """Set: the languages ("latin", "russian", "ukrainian") a story's reports are written
    in; expires with the dedupe window."""
    return f"{PREFIX}dedupe:languages:{story_id}"


def dedupe_fact(token: str) -> str:
    """List: the newest entries whose text holds this fact (a place, name, number...);
    expires with the dedupe window."""
    return f"{PREFIX}dedupe:fact:{token}"


STORIES = f"{PREFIX}stories"  # sorted set: story id -> time of its last report


def story(story_id: str) -> str:
    """Hash: a story's headline, topics, outlets and entries (workers/pipeline/stories.py)."""
    return f"{PREFIX}story:{story_id}"


def endpoint(subscription_id: str) -> str:
    """Hash: failing_since, failed_rounds, blocked_until, last_error; disabled_url/_reason/_at
    if disabled."""
    return f"{PREFIX}endpoint:{subscription_id}"


def endpoint_turn(subscription_id: str) -> str:
    """String, expiring: the worker now sending to this endpoint (Endpoints.take_turn)."""
    return f"{PREFIX}endpoint:{subscription_id}:turn"


STATS_TOTAL = f"{PREFIX}stats:total"  # hash: counter -> count since the start


def stats_minute(minute: int) -> str:
    """Hash: counter -> count in that minute (unix time // 60), and each subscription's
    outcomes (counters.subscription_field); expires after two hours."""
    return f"{PREFIX}stats:minute:{minute}"


def stats_subscription(subscription_id: str) -> str:
    """Hash: delivered / retried / failed / dead -> count, for one subscription."""
    return f"{PREFIX}stats:subscription:{subscription_id}"


def heartbeats(role: str) -> str:
    """Sorted set: process name -> its last beat; beats older than an hour are trimmed."""
    return f"{PREFIX}heartbeat:{role}"


def digest_pending(subscription_id: str) -> str:
    """Hash: story id -> the alert (versioned JSON) waiting for the subscription's digest."""
    return f"{PREFIX}digest:{subscription_id}"


DIGESTS_DUE = f"{PREFIX}digests:due"  # sorted set: subscription id -> when its digest is due

DEAD_LETTERS = f"{PREFIX}dead"  # hash: alert id -> dead letter JSON (why, when, the alert)
DEAD_LETTERS_ORDER = f"{PREFIX}dead:order"  # sorted set: alert id by time of death


def dead_letters_of(subscription_id: str) -> str:
    """Sorted set: one subscription's dead letters by time of death (same ids, same bound)."""
    return f"{PREFIX}dead:subscription:{subscription_id}"


CLAIMING_WORKERS = f"{PREFIX}workers"  # set: names of workers that claim jobs (recovery.py)


def claimed(worker_name: str) -> str:
    """List: job ids a worker has taken off a queue and RQ has not yet recorded as started;
    emptied as each starts, and given back to its queue when the worker is gone."""
    return f"{PREFIX}worker:{worker_name}:claimed"


def releasing(worker_name: str) -> str:
    """String, expiring in seconds: one worker is giving back a gone worker's jobs."""
    return f"{PREFIX}worker:{worker_name}:releasing"


# Subscriptions made over the HTTP API (subscriptions.toml's are not here): hash of id ->
# versioned JSON record; one field per subscription. The counter moves on every change, so a
# worker notices one with a single read.
API_SUBSCRIPTIONS = f"{PREFIX}subscriptions"
API_SUBSCRIPTIONS_VERSION = f"{PREFIX}subscriptions:version"
MESSAGES_KEPT = 1000  # per subscription, newest first; older ones also expire (MESSAGE_DAYS)
MESSAGE_DAYS = 7
ATTEMPTS_KEPT = 100


def messages_of(subscription_id: str) -> str:
    """Sorted set: a subscription's message ids by time first sent; trimmed to MESSAGES_KEPT
    and to MESSAGE_DAYS."""
    return f"{PREFIX}messages:subscription:{subscription_id}"


def messages_of_story(story_id: str) -> str:
    """Sorted set: the ids of the messages that told of a story (a digest tells of several),
    by time first sent; trimmed to MESSAGE_DAYS."""
    return f"{PREFIX}messages:story:{story_id}"


def message(alert_id: str) -> str:
    """String, expiring after MESSAGE_DAYS: a message's JSON (its alert document)."""
    return f"{PREFIX}message:{alert_id}"


def message_attempts(alert_id: str) -> str:
    """List, expiring after MESSAGE_DAYS: one JSON record per attempt to deliver a message
    (when, outcome, HTTP status, duration, error), oldest first."""
    return f"{PREFIX}message:{alert_id}:attempts"


def histogram(name: str) -> str:
    """Hash: bucket upper bound -> observations in that bucket, and their `sum`; a fixed
    set of fields (monitor/core/histograms.py)."""
    return f"{PREFIX}histogram:{name}"
