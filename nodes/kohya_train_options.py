"""Chainable option nodes for KohyaLoRATrain, one per settings group (settings.GROUPS): each shows its
group's settings, takes the options received so far and passes them on with its own added, so the
nodes chain in any order; a setting given twice is an error that names both nodes.

Generated from the settings table: a new group there is a new node here.
"""

from __future__ import annotations

from ..lora_workbench.training import node_layout
from ..lora_workbench.training.settings import Group, option_groups
from . import _comfy

# The options module (and the validation it brings) is imported inside collect(): ComfyUI imports
# every pack at start-up, and nothing of it is needed before a node runs.

_CHAIN_TOOLTIP = (
    "Options from another Kohya ... Options node (any order); this node adds its own and passes all on."
)
_OUTPUT_TOOLTIP = (
    "The options received plus this node's settings: connect to another option node or to Kohya LoRA "
    "Train's `options`."
)


def option_node(group: Group) -> type:
    """The node class of one settings group."""

    def INPUT_TYPES(cls):
        optional = {node_layout.OPTIONS_INPUT: (node_layout.OPTIONS_TYPE, {"tooltip": _CHAIN_TOOLTIP})}
        optional.update(node_layout.option_inputs(group.key, _comfy.filename_list_or_empty))
        return {"required": {}, "optional": optional, "hidden": {"unique_id": "UNIQUE_ID"}}

    def collect(self, options=None, unique_id=None, **values):
        from ..lora_workbench.training.options import OptionSet

        received = options if isinstance(options, OptionSet) else OptionSet()
        return (received.add(values, f"{group.title} (node {unique_id})"),)

    return type(
        group.node,
        (),
        {
            "__doc__": group.help,
            "__module__": __name__,
            "DESCRIPTION": f"{group.help} Chain option nodes in any order into Kohya LoRA Train's `options`.",
            "CATEGORY": f"{_comfy.CATEGORY}/training/options",
            "FUNCTION": "collect",
            "RETURN_TYPES": (node_layout.OPTIONS_TYPE,),
            "RETURN_NAMES": ("options",),
            "OUTPUT_TOOLTIPS": (_OUTPUT_TOOLTIP,),
            "INPUT_TYPES": classmethod(INPUT_TYPES),
            "collect": collect,
        },
    )


_NODES = [option_node(g) for g in option_groups()]
NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in _NODES}
NODE_DISPLAY_NAME_MAPPINGS = {g.node: g.title for g in option_groups()}
