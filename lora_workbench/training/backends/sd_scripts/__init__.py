"""kohya sd-scripts as a backend: the families up to early 2025 (SD 1.x/2.x/SDXL, SD3, FLUX.1, Chroma,
Lumina 2, HunyuanImage 2.1, Anima), one `train` step per run."""

from __future__ import annotations

from pathlib import Path

from ..base import Install, InstallSpec

INSTALL_SPEC = InstallSpec(
    trainer="sd-scripts",
    name="kohya sd-scripts",
    repo="kohya-ss/sd-scripts",
    marker="train_network.py",
    path_env="KOHYA_SS_PATH",
    path_setting="kohya_ss_path",
    python_env="KOHYA_PYTHON",
    python_setting="kohya_python",
    ref="48d368fa557731ad0488c07304dfeba8c07910eb",  # sd-scripts main, Feb 2026
    source_env="LORA_WORKBENCH_TRAINER_SOURCE",
    requirements="requirements.txt",
    # 8-bit CUDA optimizers only; a user who wants AdamW8bit installs it into the trainer's venv
    left_out=("bitsandbytes",),
    package="library",
    clip_tokenizers=True,
    default_path="~/kohya_ss",
)


class SdScriptsBackend:
    id = "sd-scripts"
    install_spec = INSTALL_SPEC
    # The run cache keys sd-scripts runs without a trainer id, as before there were two trainers: runs
    # already trained are still reused, and still resumable (their setup key must match).
    cache_key_id = ""

    def recipes(self):
        from ... import families

        return families.FAMILIES

    def find(self, root: Path | None = None) -> Install:
        from ... import kohya

        found = kohya.find_install(root)
        return Install(found.root, found.scripts_dir, found.python)

    def build(self, opts, target, warnings=None):
        from .build import build_job

        return build_job(opts, target, warnings)


SD_SCRIPTS = SdScriptsBackend()
