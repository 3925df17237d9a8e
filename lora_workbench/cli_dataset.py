"""CLI subcommands for the dataset area (placeholder until that area lands)."""

from __future__ import annotations


def add_commands(sub) -> None:
    pass
