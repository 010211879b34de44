"""`make bench`: the benchmark suite (figures printed, never asserted in tests)."""
