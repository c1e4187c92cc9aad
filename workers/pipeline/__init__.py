"""The worker steps, in order: normalise -> dedupe -> classify -> match."""
