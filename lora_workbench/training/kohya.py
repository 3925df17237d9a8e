"""Finding the user's kohya sd-scripts: the checkout (kohya_ss GUI or bare sd-scripts), its Python and
the offline tokenizer cache, each a sentence saying what to set when it is missing.

Pure: nothing here starts a process or imports torch. What a run's settings become is in
`settings.py` (declared), `validation.py` (checked) and `command.py` (built).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .. import paths
from ..errors import ValidationError

TOKENIZER_CACHE_ENV = "LORA_WORKBENCH_TOKENIZER_CACHE"
NO_TRAINER_HINT = (
    "Install sd-scripts with Settings -> LoRA Workbench -> Install sd-scripts in ComfyUI, "
    "or `lora-workbench trainer install` in a terminal."
)


# --------------------------------------------------------------------------- finding sd-scripts
@dataclass
class KohyaInstall:
    root: Path  # KOHYA_SS_PATH as given
    scripts_dir: Path  # the folder holding train_network.py
    python: Path


def find_sd_scripts(root: Path | None = None) -> Path:
    """The folder with train_network.py: the root itself (sd-scripts) or root/sd-scripts (kohya_ss GUI)."""
    root = Path(root) if root is not None else paths.kohya_ss_path()
    for candidate in (root, root / "sd-scripts"):
        if (candidate / "train_network.py").is_file():
            return candidate
    if not root.exists():
        raise ValidationError(
            f"No kohya sd-scripts found: KOHYA_SS_PATH={root} does not exist. {NO_TRAINER_HINT} Or set "
            f"KOHYA_SS_PATH (or kohya_ss_path in {paths.settings_path()}) to your kohya_ss or sd-scripts folder."
        )
    raise ValidationError(
        f"KOHYA_SS_PATH={root} has neither train_network.py nor sd-scripts/train_network.py; set KOHYA_SS_PATH "
        f"(or kohya_ss_path in {paths.settings_path()}) to a kohya_ss or sd-scripts checkout."
    )


def _venv_python(folder: Path) -> list[Path]:
    if os.name == "nt":
        return [folder / "venv" / "Scripts" / "python.exe", folder / ".venv" / "Scripts" / "python.exe"]
    return [folder / "venv" / "bin" / "python", folder / ".venv" / "bin" / "python"]


def find_python(root: Path, scripts_dir: Path) -> Path:
    """KOHYA_PYTHON (or settings kohya_python), else the checkout's venv python; a sentence when none."""
    explicit = paths.kohya_python()
    if explicit is not None:
        if explicit.is_file():
            return explicit
        raise ValidationError(
            f"KOHYA_PYTHON={explicit} does not exist; set KOHYA_PYTHON (or kohya_python in "
            f"{paths.settings_path()}) to the python of your sd-scripts environment."
        )
    tried = []
    for folder in dict.fromkeys([root, scripts_dir]):
        for c in _venv_python(folder):
            tried.append(str(c))
            if c.is_file():
                return c
    raise ValidationError(
        f"No python found for sd-scripts in KOHYA_SS_PATH={root}: expected {tried[0]}; create its venv, or set "
        f"KOHYA_PYTHON (or kohya_python in {paths.settings_path()}) to the interpreter that runs sd-scripts."
    )


def find_install(root: str | os.PathLike | None = None) -> KohyaInstall:
    base = Path(root) if root is not None else paths.kohya_ss_path()
    scripts = find_sd_scripts(base)
    return KohyaInstall(base, scripts, find_python(base, scripts))


def default_tokenizer_cache() -> str:
    """$LORA_WORKBENCH_TOKENIZER_CACHE, settings `tokenizer_cache_dir`, the managed trainer's tokenizers
    when it is in use ("" = sd-scripts downloads)."""
    if os.environ.get(TOKENIZER_CACHE_ENV):
        return str(Path(os.environ[TOKENIZER_CACHE_ENV]).expanduser())
    value = paths.load_settings().get("tokenizer_cache_dir")
    if not value:
        return _managed_tokenizers()
    saved = Path(value).expanduser()
    # A folder saved inside the roots (the dialog may save no other) is checked again where it now
    # leads: a link on its way, re-pointed since by a shared project, must not send sd-scripts' writes out.
    roots = paths.allowed_roots()
    real = os.path.realpath(saved)
    if paths.is_within_roots(os.path.abspath(saved), roots) and not paths.is_within_roots(real, roots):
        raise ValidationError(
            f"The tokenizer cache folder {saved} (tokenizer_cache_dir in {paths.settings_path()}) now leads "
            f"to {real}, outside the allowed roots, through a link changed since it was saved; save the "
            "folder again in the settings dialog, or set it from a shell: "
            "`lora-workbench settings --set tokenizer_cache_dir=/path/to/it`."
        )
    return str(saved)


def _managed_tokenizers() -> str:
    """The managed trainer's tokenizer folder (filled from ComfyUI's files) when that trainer is the
    one in use; a KOHYA_SS_PATH install keeps sd-scripts' own behaviour."""
    managed = paths.managed_trainer_in_use()
    if managed is None or not managed.tokenizers.is_dir():
        return ""
    return str(managed.tokenizers)


_OFFLINE_RE = re.compile(
    r"OfflineModeIsEnabled|LocalEntryNotFoundError|couldn't connect to 'https://huggingface\.co'"
    r"|outgoing traffic has been disabled|Cannot reach https://huggingface\.co"
)
_REPO_ID_RE = re.compile(r"['\"]([A-Za-z0-9][\w.-]*/[\w.-]+)['\"]")


def offline_tokenizer_hint(lines: list[str], cache_dir: str) -> str:
    """A sentence naming the folder to fill when sd-scripts failed for want of Hub files while offline
    (a family whose tokenizers ComfyUI does not ship); "" when the log shows no such failure."""
    text = "\n".join(lines)
    if not _OFFLINE_RE.search(text):
        return ""
    ids = [i for i in _REPO_ID_RE.findall(text) if not i.startswith("huggingface.co")]
    if not cache_dir:
        return (
            "sd-scripts needed files from the Hugging Face Hub while offline: set LORA_WORKBENCH_TOKENIZER_CACHE "
            f"(or tokenizer_cache_dir in {paths.settings_path()}) to a folder holding its tokenizers, or allow "
            "Hub access once."
        )
    if not ids:
        return f"sd-scripts needed files from the Hugging Face Hub while offline: put its tokenizers in {cache_dir}."
    folder = Path(cache_dir) / ids[-1].replace("/", "_")
    return (
        f"sd-scripts needed the tokenizer {ids[-1]} from the Hugging Face Hub while offline: put its files in "
        f"{folder}, or allow Hub access once (sd-scripts then saves it there)."
    )
