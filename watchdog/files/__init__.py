"""JSONL files in and out (replay, train, simulate)."""
