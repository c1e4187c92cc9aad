"""How well the topic rules do on lines an analyst labelled: `newsmon classify --eval FILE`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TopicResult:
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        labelled = self.true_positives + self.false_negatives
        return self.true_positives / labelled if labelled else 1.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


@dataclass
class Evaluation:
    topics: dict[str, TopicResult]
    misses: list[dict] = field(default_factory=list)  # id, title, expected, got

    @property
    def macro_f1(self) -> float:
        return sum(r.f1 for r in self.topics.values()) / len(self.topics) if self.topics else 0.0


def evaluate(topic_names: list[str], labelled: list[tuple[dict, set[str], set[str]]]) -> Evaluation:
    """Score (item, expected topics, predicted topics) triples per topic; list the misses."""
    result = Evaluation({name: TopicResult() for name in topic_names})
    for item, expected, got in labelled:
        for name, scores in result.topics.items():
            scores.true_positives += name in expected and name in got
            scores.false_positives += name not in expected and name in got
            scores.false_negatives += name in expected and name not in got
        if expected != got:
            result.misses.append(
                {
                    "id": item.get("id"),
                    "title": item.get("title", ""),
                    "expected": sorted(expected),
                    "got": sorted(got),
                }
            )
    return result
