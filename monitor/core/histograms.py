"""Histograms kept in Redis, written by every process and read by `/metrics` at scrape time,
so one endpoint shows one distribution for the whole deployment (as the counters do).

A histogram is one hash: a field per bucket (its upper bound, as Prometheus writes `le`)
counting the observations that fell in it, not the ones below it, and `sum`. Observations
ride in the pipelines that write the counters (`monitor.core.counters`), one HINCRBY per
bucket touched. The read side makes the buckets cumulative; a field written under other
bounds (an older newsmon's) counts in the first current bucket that holds it.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis

from monitor.core import keys

SUM = "sum"
INF = "+Inf"


@dataclass(frozen=True)
class Histogram:
    name: str  # exposed as newsmon_<name>
    help: str
    bounds: tuple[float, ...]  # upper bounds, ascending; +Inf is implied

    def field_of(self, value: float) -> str:
        """The bucket field an observation of `value` adds to."""
        index = bisect.bisect_left(self.bounds, value)
        return label(self.bounds[index]) if index < len(self.bounds) else INF


def label(bound: float) -> str:
    """A bound as Prometheus writes `le` ("0.05", "1.0", "+Inf")."""
    return INF if math.isinf(bound) else repr(float(bound))


FETCH = Histogram(
    "fetch_duration_seconds",
    "time to fetch one feed (answered or failed), waiting for a connection slot excluded",
    (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0),
)
ENTRY_PROCESSING = Histogram(
    "entry_processing_seconds",
    "worker time per entry: normalise, dedupe, classify, match (a slice's time shared out)",
    (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
DELIVERY = Histogram(
    "delivery_duration_seconds",
    "time for a receiver to answer one webhook attempt",
    (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0),
)
FETCH_TO_DELIVERY = Histogram(
    "fetch_to_delivery_seconds",
    "from the fetch that brought an entry to its alert's 2xx, retries included",
    (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0, 21600.0, 86400.0),
)
HISTOGRAMS = (FETCH, ENTRY_PROCESSING, DELIVERY, FETCH_TO_DELIVERY)
Observations = Mapping[Histogram, Sequence[float]]


def observe(pipe: redis.client.Pipeline, observations: Observations) -> None:
    """Add observations (seconds), in the caller's pipeline."""
    for histogram, values in observations.items():
        if not values:
            continue
        key = keys.histogram(histogram.name)
        for field, times in Counter(histogram.field_of(v) for v in values).items():
            pipe.hincrby(key, field, times)
        pipe.hincrbyfloat(key, SUM, sum(values))


@dataclass(frozen=True)
class Distribution:
    buckets: list[tuple[str, int]]  # (le, observations at or below it), cumulative, to +Inf
    sum: float

    @property
    def count(self) -> int:
        return self.buckets[-1][1]


def distribution(histogram: Histogram, raw: Mapping[bytes, bytes]) -> Distribution:
    """A histogram's hash, as read from Redis, made cumulative."""
    per_bucket = [0] * (len(histogram.bounds) + 1)
    total = 0.0
    for field, value in raw.items():
        name = field.decode()
        if name == SUM:
            total = float(value)
            continue
        bound = math.inf if name == INF else float(name)
        per_bucket[bisect.bisect_left(histogram.bounds, bound)] += int(value)
    running, buckets = 0, []
    for bound, count in zip([*histogram.bounds, math.inf], per_bucket, strict=True):
        running += count
        buckets.append((label(bound), running))
    return Distribution(buckets, total)
