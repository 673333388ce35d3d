"""The printer queue: job states and their transition table, the store, the daemon that owns the printers."""
