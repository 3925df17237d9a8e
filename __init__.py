"""LoRA Workbench - ComfyUI node pack entry point: registration only.

Nothing heavy happens here (no torch, no threads): nodes import their work lazily.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"

try:  # HTTP routes and event forwarding exist only inside a running ComfyUI server
    from .nodes import _routes

    _routes.register()
except ImportError:
    pass

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
