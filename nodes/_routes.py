"""HTTP routes under /lora_workbench/ (placeholder until the web issue lands)."""

from __future__ import annotations


def register() -> bool:
    """Register routes on PromptServer.instance if a server is running; True when registered."""
    from . import _comfy

    if _comfy.prompt_server() is None:
        return False
    _comfy.register_comfy_roots()
    _comfy.forward_core_events()
    return True
