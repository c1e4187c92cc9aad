"""What the operator's side refuses (monitor/ops/root.py), as its own exceptions: each face
says it its way, the CLI as a line on stderr, the API as a 4xx."""

from __future__ import annotations


class OperationError(Exception):
    """An operation the state does not allow; the message says why and what to do."""


class UnknownSubscription(OperationError):
    def __init__(self, subscription_id: str):
        super().__init__(
            f"no subscription {subscription_id!r} in subscriptions.toml or made over the API"
        )
        self.subscription_id = subscription_id


class InvalidSubscription(OperationError):
    """A subscription made over the API that the config no longer allows (its topic or its
    feed gone): stored, but not alerted."""

    def __init__(self, subscription_id: str, problems: list[str]):
        super().__init__(
            f"subscription {subscription_id!r} was made over the API and no longer passes the "
            f"check ({'; '.join(problems)}): PATCH it to fix it, or DELETE it"
        )
        self.subscription_id = subscription_id


class OwnedByFile(OperationError):
    """An API change to a subscription that subscriptions.toml defines: the file wins."""

    def __init__(self, subscription_id: str):
        super().__init__(
            f"subscription {subscription_id!r} is defined in subscriptions.toml, which wins: "
            "change it there, or use another id"
        )
        self.subscription_id = subscription_id


class SubscriptionExists(OperationError):
    def __init__(self, subscription_id: str):
        super().__init__(f"subscription {subscription_id!r} exists; PATCH it")
        self.subscription_id = subscription_id


class UnreadableTime(OperationError):
    """A time that is neither ISO 8601 nor a duration back from now."""
