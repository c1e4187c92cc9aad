"""Sentence vectors: what the topic model reads, so it knows words no rule lists.

A text's vector is the mean of its word pieces' static vectors, distilled from the
all-MiniLM-L6-v2 sentence encoder (scripts/distil_word_vectors.py builds
`data/word_vectors.npz`; see `data/NOTICE`). Words split into pieces the way that model's
WordPiece tokenizer splits them ("drones" -> "drone", "##s"), so a word never seen in any
labelled line still lands near the words it is like.
"""

from __future__ import annotations

import functools
import unicodedata
from pathlib import Path

import numpy as np

from workers.text import words

WORD_VECTORS = Path(__file__).resolve().parent / "data" / "word_vectors.npz"
VECTORS_ID = "minilm-l6-v2-pieces-128"  # a topic model names the vectors it was trained on
DIMENSIONS = 128
MAX_PIECES_PER_WORD = 10  # longer words are noise (URLs, ids) and cost a slow search


class WordVectors:
    def __init__(self, path: Path = WORD_VECTORS):
        with np.load(path) as data:
            pieces = str(data["pieces"]).split("\n")
            # Kept as int8 and scaled on use: 3.5 MB per worker instead of 14, for ~10 us more
            # per entry.
            self.table, self.scales = data["vectors"], data["scales"]
        self.index = {piece: row for row, piece in enumerate(pieces)}
        self.dimensions = self.table.shape[1]
        self.pieces = functools.lru_cache(maxsize=100_000)(self._pieces)

    def _pieces(self, word: str) -> tuple[int, ...]:
        """Greedy longest-match WordPiece; () for a word the vocabulary cannot spell."""
        word = "".join(
            c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn"
        )
        rows: list[int] = []
        start = 0
        while start < len(word) and len(rows) < MAX_PIECES_PER_WORD:
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if (row := self.index.get(piece)) is not None:
                    rows.append(row)
                    start = end
                    break
            else:
                return ()
        return tuple(rows) if start == len(word) else ()

    def vector(self, text: str) -> np.ndarray:
        """The unit-length mean of the text's piece vectors; zeros for a text with none."""
        return self.vector_of_words(words(text))

    def vector_of_words(self, text_words: list[str]) -> np.ndarray:
        rows = [row for word in text_words for row in self.pieces(word)]
        if not rows:
            return np.zeros(self.dimensions, dtype=np.float32)
        mean = (self.table[rows] * self.scales[rows, None]).mean(axis=0)
        return mean / np.linalg.norm(mean)


@functools.cache
def shipped() -> WordVectors:
    """The vectors shipped with newsmon, loaded once per process."""
    return WordVectors()
