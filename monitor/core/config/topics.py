"""`topics.toml`: each [topics.NAME] table, its weighted terms, ignored contexts, threshold."""

from __future__ import annotations

from monitor.core.config.reading import NUMBER, Reader, key_name, shown
from monitor.core.config.values import Between, name, phrases
from monitor.core.models import ALL_TOPICS, Topic
from monitor.core.text import words

TOPIC_KEYS = {"threshold", "terms", "ignore", "description"}
TOPIC_THRESHOLD = Between(0, 1000, above=True)
TERM_WEIGHT = Between(-1000, 1000)


def read_topics(reader: Reader) -> tuple[Topic, ...]:
    table = reader.get(reader.data, "topics", "", dict, default={})
    if not table and reader.data:
        reader.problem("topics", "no topics defined; add a [topics.NAME] table")
    topics = []
    for topic_name, spec in table.items():
        at = f"topics.{key_name(topic_name)}"
        where = f"{at}."
        if (message := name(topic_name)) or topic_name == ALL_TOPICS:
            reader.problem(at, message or "'*' is reserved for 'every entry'")
            continue
        if not isinstance(spec, dict):
            reader.problem(at, "must be a table: [topics.NAME] with threshold and terms")
            continue
        reader.unknown_keys(spec, TOPIC_KEYS, where)
        threshold = reader.get(spec, "threshold", where, NUMBER, 2.0, TOPIC_THRESHOLD)
        terms = reader.require(spec, "terms", where, dict) or {}
        clean_terms = {}
        for term in terms:
            weight = reader.get(terms, term, f"{where}terms.", NUMBER, check=TERM_WEIGHT)
            if not words(term):
                reader.problem(f"{where}terms", f"{shown(term)} has no words; remove it")
            elif weight is not None:
                clean_terms[term] = float(weight)
        ignore = reader.get(spec, "ignore", where, list, [], phrases)
        reader.get(spec, "description", where, str)
        if clean_terms:
            topics.append(Topic(topic_name, float(threshold), clean_terms, tuple(ignore)))
        elif "terms" in spec:
            reader.problem(f"{where}terms", 'has no terms; add at least one "phrase" = weight')
    return tuple(topics)
