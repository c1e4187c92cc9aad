"""The learned parts: the sentence encoder, the topic model, and scoring on labelled lines."""
