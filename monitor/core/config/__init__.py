"""The configuration folder (`newsmon.toml`, `feeds.toml`, `topics.toml`,
`subscriptions.toml`, `topic_model.json`) read and checked into typed objects, every
problem naming the file, the key and the fix."""

from monitor.core.config.folder import (
    Config,
    config_dir,
    load_config,
    load_topic_model,
    load_topics,
)
from monitor.core.config.reading import ConfigError, Problem
from monitor.core.config.settings import SETTINGS_KEYS, Settings, env_variable
from monitor.core.config.subscription import SMTP_NEEDED, SUBSCRIPTION_KEYS, check_subscription
from monitor.core.config.topic_model import TOPIC_MODEL, save_topic_model
from monitor.core.config.values import NAME_PATTERN, table_key

__all__ = [
    "NAME_PATTERN",
    "SETTINGS_KEYS",
    "SMTP_NEEDED",
    "SUBSCRIPTION_KEYS",
    "TOPIC_MODEL",
    "Config",
    "ConfigError",
    "Problem",
    "Settings",
    "check_subscription",
    "config_dir",
    "env_variable",
    "load_config",
    "load_topic_model",
    "load_topics",
    "save_topic_model",
    "table_key",
]
