"""A musubi-tuner Job built the way train.py builds one, for the musubi unit tests: a real project
(tests.unit.train_fakes), a recipe's files by their usual names, a fake checkout path (nothing runs)."""

from __future__ import annotations

from pathlib import Path

from lora_workbench.dataset.dataset_toml import dataset_from_toml
from lora_workbench.modelfiles.detect import ModelInfo
from lora_workbench.training.backends import for_family
from lora_workbench.training.backends.base import Install
from lora_workbench.training.command import Target
from lora_workbench.training.options import TrainOptions
from tests.unit import train_fakes

FAMILY_VARIANTS = {
    "qwen_image": "original",
    "wan": "t2v-14B",
    "z_image": "",
    "flux2": "dev",
    "flux_kontext": "",
    "hunyuan_video_1_5": "t2v",
    "framepack": "",
}
TRAIN_SCRIPTS = {
    "qwen_image": "qwen_image_train_network.py",
    "wan": "wan_train_network.py",
    "z_image": "zimage_train_network.py",
    "flux2": "flux_2_train_network.py",
    "flux_kontext": "flux_kontext_train_network.py",
    "hunyuan_video_1_5": "hv_1_5_train_network.py",
    "framepack": "fpack_train_network.py",
}
MUSUBI = Install(
    Path("/opt/musubi-tuner"), Path("/opt/musubi-tuner"), Path("/opt/musubi-tuner/venv/bin/python")
)


def files_for(family: str) -> dict:
    _, recipe = for_family(family)
    return {f.option: f"/models/{f.folder}/{f.example}" for f in recipe.model_files}


def target(project: Path, family: str, variant: str | None = None, device="gpu", files=None, dataset=None):
    dataset = dataset or dataset_from_toml(project / "dataset.toml", project)
    model = ModelInfo(
        "/models/diffusion_models/dit.safetensors",
        family,
        "test",
        variant=FAMILY_VARIANTS[family] if variant is None else variant,
    )
    return Target(
        dataset,
        model,
        MUSUBI,
        device,
        project / "output" / "run-001",
        logging_dir=project / "logs",
        model_files=files_for(family) if files is None else files,
    )


def build(t: Target, **values):
    backend, _ = for_family(t.model.arch)
    return backend.build(TrainOptions.from_values(values), t)


def step(job, name: str):
    return next(s for s in job.steps if s.name == name)


def after_script(argv) -> list[str]:
    i = next(i for i, a in enumerate(argv) if a.endswith(".py"))
    return list(argv[i + 1 :])


def make_project(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    return train_fakes.make_project(tmp_path, images=3, repeats=2)


def add_controls(project: Path, names=None) -> Path:
    """Image pairs: the subset's control/ folder with a reference PNG per training image (or `names`)."""
    from PIL import Image

    sub = next((project / "images").iterdir())
    control = sub / "control"
    control.mkdir(exist_ok=True)
    stems = names if names is not None else [p.stem for p in sub.glob("*.png")]
    for stem in stems:
        Image.new("RGB", (64, 64), (0, 0, 0)).save(control / f"{stem}.png")
    return control


def paired(project: Path, family: str, variant: str | None = None, **kw) -> Target:
    """A target whose subset has a control image for each training image (FLUX.1 Kontext, Qwen-Image-Edit)."""
    add_controls(project)
    return target(project, family, variant, **kw)
