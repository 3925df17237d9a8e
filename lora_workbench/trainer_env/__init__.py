"""The managed trainer: the pack clones sd-scripts at its pinned commit into its own data folder, makes
a venv beside it with torch held by a constraint, checks what it built and only then records it as
the trainer in use.

    pins.py        the source, commit and fallback torch the integration tier is checked against
    platform.py    per-OS places: the data folder, a venv's interpreter
    layout.py      where each build lives, and the record of the one in use (current.json)
    torch_pick.py  which torch: ComfyUI's own (`auto`) or an explicit spec, and its package index
    plan.py        the steps of an install, computed from the request alone (pure)
    procs.py       running git, venv and pip as argv lists, line by line, cancellable
    tokenizers.py  SD 1.x / SDXL CLIP tokenizers filled from ComfyUI's own files
    install.py     running a plan with stamps, a lock, progress and cancel; status, check, update, remove

Nothing here is imported when the pack loads; `paths` reads only `layout.in_use()`.
"""
