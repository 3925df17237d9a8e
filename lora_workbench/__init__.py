"""Pure core of the LoRA Workbench: no ComfyUI import anywhere in this package.

The ComfyUI node adapters (../nodes) and the command line (cli.py) both call into it.
"""

__version__ = "0.1.0"
