"""LoRA Workbench - ComfyUI node pack entry point: registration only.

Nothing heavy happens here (no torch, no threads): nodes import their work lazily.
"""

WEB_DIRECTORY = "./web"
NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}

# ComfyUI imports this file as a package, so relative imports work. pytest (8+) also imports the
# repo root's __init__.py while collecting, bare when the checkout's folder name is not a valid
# module name (e.g. "comfyui-lora-workbench"); then there is nothing to register.
if __package__:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS, _routes  # noqa: F811

    _routes.register()  # HTTP routes and event forwarding, only inside a running ComfyUI server

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
