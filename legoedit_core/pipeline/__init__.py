"""One shard end to end (read, plan, run waves, build rows) and its judged variant: what flows and loops call."""
