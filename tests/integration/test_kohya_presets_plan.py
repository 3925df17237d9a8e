"""The kohya_ss GUI's own presets through the pack's whole plan and sd-scripts' own parser (no weights,
no training): each preset is imported, its refused keys are a sentence, then (as with
--ignore-unsupported-keys) it is planned on a base of its own family (SD 1.5, SDXL, or a sparse
full-size FLUX.1 dev with its text encoders and autoencoder) with the pack's family checks and the
LyCORIS package check, and the command is parsed and checked by that family's trainer
(sdscripts_argcheck.py). Needs KOHYA_SS_GUI_PATH (a kohya_ss GUI checkout)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_workbench.dataset.dataset_toml import dataset_from_toml
from lora_workbench.errors import ValidationError
from lora_workbench.modelfiles.detect import detect_model
from lora_workbench.training import kohya, train
from lora_workbench.training.backends.sd_scripts import SD_SCRIPTS, kohya_gui
from lora_workbench.training.command import Target, effective_options
from lora_workbench.training.options import TrainOptions
from tests.unit import synthetic_models as sm
from tests.unit import train_fakes as fakes

from . import sdscripts_argcheck as argcheck
from .test_sdscripts_args import dataset_expected, expected, kohya_gui_presets, kv_expected
from .test_sdscripts_args_families import model_folders

pytestmark = pytest.mark.integration

BASES = {"sd1": fakes.sd1_tensors, "sdxl": fakes.sdxl_tensors, "flux": lambda: sm.flux("dev")}
FLUX_FILES = {
    "text_encoders": {"clip_l.safetensors": sm.clip_l, "t5xxl_fp16.safetensors": sm.t5xxl},
    "vae": {"ae.safetensors": sm.flux_ae},
}


@pytest.fixture
def world(tmp_path, kohya_dir, kohya_python, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    monkeypatch.setenv("KOHYA_SS_PATH", str(kohya_dir))
    monkeypatch.setenv("KOHYA_PYTHON", str(kohya_python))
    source = model_folders(tmp_path / "models", FLUX_FILES)
    bases = {f: sm.write_model(tmp_path / f"{f}.safetensors", make()) for f, make in BASES.items()}
    project = fakes.make_project(tmp_path, images=4, size=64)
    return dataset_from_toml(project / "dataset.toml", project), source, bases


def _planned(name: str, imp, world, notes: list[str]) -> tuple[str, object, object, Path]:
    """(family, options, command, run folder) of one imported preset, planned as the CLI would on a
    GPU; a LyCORIS preset stops at the package check (a sentence, kept in `notes`) and is built as
    the plan would have built it."""
    ds, source, bases = world
    family = {"": "sd1", "flux1": "flux"}.get(imp.family, imp.family)
    opts = TrainOptions.from_values(imp.settings())
    try:
        plan = train.plan(opts, ds, bases[family], device="gpu", files=source)
        return family, plan.prepared.options, plan.job, plan.run_dir
    except ValidationError as exc:
        assert opts.network_type.startswith("lycoris_") and "lycoris" in str(exc), (name, str(exc))
        notes.append(f"{name}: {exc}")
    opts = effective_options(opts, ds)
    run_dir = Path(ds.project_dir) / "output" / f"preset-{abs(hash(name))}"
    target = Target(ds, detect_model(bases[family]), kohya.find_install(), "gpu", run_dir)
    return family, opts, SD_SCRIPTS.build(opts, target), run_dir


def _case(name: str, family: str, opts, job, run_dir: Path, ds) -> argcheck.Case:
    """The job's files written where a run writes them, its train step checked."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for file_name, text in job.files.items():
        (run_dir / file_name).write_text(text, encoding="utf-8")
    expect = {**expected(opts), **kv_expected(opts)}
    argv = list(job.train_step.argv)
    return argcheck.Case(f"{family} preset {name}", argv, job.config, expect, dataset_expected(opts))


def test_every_kohya_ss_preset_plans_on_a_base_of_its_family_and_its_trainer_takes_it(world, kohya_python):
    presets = kohya_gui_presets()
    ds = world[0]
    cases, refused, lycoris = [], [], []
    for name, path in sorted(presets.items()):
        imp = kohya_gui.import_file(path)
        if imp.refused:
            with pytest.raises(ValidationError, match=r"^The kohya_ss config .* asks for training"):
                imp.check()
            refused.append(f"{name}: {', '.join(k for k, _ in imp.refused)}")
        family, opts, cmd, run_dir = _planned(name, imp, world, lycoris)
        cases.append(_case(name, family, opts, cmd, run_dir, ds))
    results = argcheck.check(kohya_python, kohya.find_install().scripts_dir, cases)
    found = [p for case, res in zip(cases, results, strict=True) for p in argcheck.problems(case, res)]
    by_family = {f: sum(c.name.startswith(f + " ") for c in cases) for f in BASES}
    print(f"\n{len(cases)} kohya_ss presets planned {by_family}: {len(found)} problems in sd-scripts")
    print(f"{len(refused)} with refused keys (a sentence; planned without them):")
    print("\n".join(f"  {r}" for r in refused))
    print(f"{len(lycoris)} LyCORIS presets stopped by the package check (a sentence):")
    print("\n".join(f"  {n[:200]}" for n in lycoris[:3]))
    assert not found, "\n".join(found)
    assert by_family["flux"] >= 1 and by_family["sdxl"] >= 1
