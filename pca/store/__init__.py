"""The durable, append-only, hash-chained event log and recovery from it."""
