"""Thin Prefect tasks over ``legoedit_core``: plan a shard, run one brick group, write a shard's part."""
