"""The trainers the pack drives, each owning its families: `for_family(id)` -> (backend, recipe).

Each family id has exactly one owner (a second is an error at import, as OneTrainer's factory does).
"""

from __future__ import annotations

from collections.abc import Mapping

from .base import Backend, Install, InstallSpec

__all__ = ["Backend", "Install", "InstallSpec", "backends", "for_family", "owner_of"]

_BACKENDS: tuple[Backend, ...] | None = None


def backends() -> tuple[Backend, ...]:
    """The registered backends, sd-scripts first (imported lazily: the tables are cheap but many)."""
    global _BACKENDS
    if _BACKENDS is None:
        from .musubi import MUSUBI
        from .sd_scripts import SD_SCRIPTS

        found = (SD_SCRIPTS, MUSUBI)
        _check_owners(found)
        _BACKENDS = found
    return _BACKENDS


def _check_owners(found) -> None:
    owners: dict[str, str] = {}
    for backend in found:
        for family_id in backend.recipes():
            if family_id in owners:
                raise RuntimeError(
                    f"family {family_id} is owned by both {owners[family_id]} and {backend.id}"
                )
            owners[family_id] = backend.id


def owner_of(family_id: str) -> Backend:
    for backend in backends():
        if family_id in backend.recipes():
            return backend
    raise KeyError(f"no trainer trains model family {family_id!r}")


def for_family(family_id: str) -> tuple[Backend, Mapping]:
    backend = owner_of(family_id)
    return backend, backend.recipes()[family_id]
