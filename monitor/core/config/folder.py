"""The configuration folder read whole into typed objects: past this package no code reads
raw TOML."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from monitor.core.config.feeds import read_feeds
from monitor.core.config.reading import ConfigError, Problem, Reader, printable
from monitor.core.config.settings import Settings, read_settings
from monitor.core.config.subscription import read_subscriptions
from monitor.core.config.topic_model import TOPIC_MODEL, read_topic_model
from monitor.core.config.topics import read_topics
from monitor.core.models import Feed, Subscription, Topic, TopicModel


@dataclass(frozen=True)
class Config:
    directory: Path
    settings: Settings
    feeds: tuple[Feed, ...]
    topics: tuple[Topic, ...]
    subscriptions: tuple[Subscription, ...]
    topic_model: TopicModel | None = None


def config_dir(cli_value: str | None) -> Path:
    """`--config DIR`, else `$NEWSMON_CONFIG`, else `./config`."""
    return Path(cli_value or os.environ.get("NEWSMON_CONFIG") or "config")


def load_config(directory: Path) -> Config:
    """Read all four files of `directory`; raise ConfigError listing every problem found."""
    problems: list[Problem] = []
    if not _is_dir(directory):
        raise ConfigError(
            [
                Problem(
                    printable(str(directory)),
                    "-",
                    "no such folder; pass --config DIR or set NEWSMON_CONFIG",
                )
            ]
        )
    settings = read_settings(
        Reader(directory / "newsmon.toml", problems, required=False), os.environ
    )
    topics = read_topics(Reader(directory / "topics.toml", problems))
    topic_model = read_topic_model(directory / TOPIC_MODEL, topics, problems)
    feeds = read_feeds(Reader(directory / "feeds.toml", problems), settings)
    subscriptions = read_subscriptions(
        Reader(directory / "subscriptions.toml", problems),
        {t.name for t in topics},
        feeds,
        settings.smtp_host,
    )
    if problems:
        raise ConfigError(problems)
    return Config(directory, settings, feeds, topics, subscriptions, topic_model)


def load_topics(directory: Path) -> tuple[Topic, ...]:
    """Only `topics.toml`: what `newsmon classify` needs, without feeds or secrets."""
    problems: list[Problem] = []
    topics = read_topics(Reader(directory / "topics.toml", problems))
    if problems:
        raise ConfigError(problems)
    return topics


def load_topic_model(directory: Path, topics: tuple[Topic, ...]) -> TopicModel | None:
    """`topic_model.json`, checked against the topics; None when there is none."""
    problems: list[Problem] = []
    topic_model = read_topic_model(directory / TOPIC_MODEL, topics, problems)
    if problems:
        raise ConfigError(problems)
    return topic_model


def _is_dir(directory: Path) -> bool:
    try:
        return directory.is_dir()
    except (OSError, ValueError):  # no permission to look, or a NUL in the name
        return False
