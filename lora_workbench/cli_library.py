"""CLI subcommands for the library area (placeholder until that area lands)."""

from __future__ import annotations


def add_commands(sub) -> None:
    pass
