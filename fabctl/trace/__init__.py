"""The per-case record: typed events in an append-only, hash-chained log."""
