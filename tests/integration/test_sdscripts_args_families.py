"""Every family's commands through its own trainer's parser and checks (no weights, no training): for
sd3_train_network.py, flux_train_network.py (FLUX.1 and Chroma), lumina_train_network.py,
hunyuan_image_train_network.py and anima_train_network.py, the default command and one command per
setting that applies to the family are parsed by the script's setup_parser() + read_config_from_file,
checked by its dataset blueprint from our dataset TOML and its trainer's assert_extra_args
(sdscripts_argcheck.py). The base models and extra files are full-size sparse files with the real
tensor names (tests/unit/synthetic_models.py), picked the way the node picks them."""

from __future__ import annotations

import pytest

from lora_workbench import toml_writer
from lora_workbench.dataset.dataset_toml import dataset_from_toml
from lora_workbench.modelfiles.detect import detect_model
from lora_workbench.training import families, kohya, model_files
from lora_workbench.training.backends.sd_scripts.dataset_config import write_dataset_copy
from lora_workbench.training.command import Target, build_command, effective_options
from lora_workbench.training.options import TrainOptions
from lora_workbench.training.settings import SETTINGS, Where
from lora_workbench.training.validation import validate
from tests.unit import synthetic_models as sm
from tests.unit import train_fakes as fakes

from . import sdscripts_argcheck as argcheck
from .test_sdscripts_args import dataset_expected, expected, kv_expected

pytestmark = pytest.mark.integration

BASES = {
    "flux": lambda: sm.flux("dev"),
    "chroma": sm.chroma,
    "sd3": lambda: sm.sd3_checkpoint("3.5-large", with_text_encoders=False),
    "lumina2": sm.lumina2,
    "hunyuan_image": sm.hunyuan_image,
    "anima": sm.anima,
}
FILES = {  # ComfyUI's folders, as a user has them
    "text_encoders": {
        "clip_l.safetensors": sm.clip_l,
        "clip_g.safetensors": sm.clip_g,
        "t5xxl_fp16.safetensors": sm.t5xxl,
        "gemma_2_2b_fp16.safetensors": sm.gemma2,
        "qwen_2.5_vl_7b.safetensors": sm.qwen2_5_vl,
        "byt5_small_glyphxl_fp16.safetensors": sm.byt5,
        "qwen_3_06b_base.safetensors": sm.qwen3_06b,
    },
    "vae": {
        "ae.safetensors": sm.flux_ae,
        "hunyuan_image_2.1_vae_fp16.safetensors": sm.hunyuan_vae,
        "qwen_image_vae.safetensors": sm.qwen_image_vae,
    },
}
# Not per-command cases: resolved before the command (model files, the family itself) or checked by
# the unit tier (show_samples, link_to_library).
SKIP = {"model_type", "show_samples", "link_to_library"}


def example(family: str, s) -> object:
    """A valid non-default value of `s` for this family's trainer."""
    fam = families.get(family)
    if s.name == "network_module":
        return fam.network_modules[-1]
    if s.name == "script":
        return fam.script
    return s.example_value()


def setting_cases(family: str) -> list[tuple[str, dict]]:
    cases = [("defaults", {})]
    for s in SETTINGS:
        if family in s.families and s.name not in SKIP and not s.comfy_folder:
            value = example(family, s)
            needs = {} if s.name == "script" else s.example_with  # the family's own script needs nothing
            cases.append((f"{s.name}={value!r}", {**needs, s.name: value}))
    return cases


def model_folders(models, files: dict) -> model_files.FileSource:
    """ComfyUI-like model folders holding `files` ({folder: {name: tensors()}}, sparse full-size
    files), as the FileSource the trainer node would see."""
    for folder, names in files.items():
        for name, tensors in names.items():
            sm.write_model(models / folder / name, tensors())

    def resolve(folder, name):
        p = models / folder / name
        return str(p) if p.is_file() else None

    return model_files.FileSource({f: sorted(names) for f, names in files.items()}, resolve)


@pytest.fixture
def world(tmp_path, kohya_dir, kohya_python, monkeypatch):
    """sd-scripts configured, a 64x64 project, ComfyUI-like model folders with every extra file."""
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    monkeypatch.setenv("KOHYA_SS_PATH", str(kohya_dir))
    monkeypatch.setenv("KOHYA_PYTHON", str(kohya_python))
    source = model_folders(tmp_path / "models", FILES)
    project = fakes.make_project(tmp_path, images=4, size=64)
    return kohya.find_install(), dataset_from_toml(project / "dataset.toml", project), source


def build_case(tmp_path, family: str, name: str, values: dict, world) -> argcheck.Case:
    install, ds, source = world
    # the trainer at 512x512 over the 64x64 dataset, as its defaults were before they became the
    # dataset's (buckets forced on need min_bucket_reso 256 <= the resolution)
    opts = effective_options(TrainOptions.from_values({"width": 512, "height": 512, **values}), ds)
    validate(opts)
    base = sm.write_model(tmp_path / f"{family}.safetensors", BASES[family]())
    model = detect_model(base, opts.model_type)
    chosen = {slot.option: getattr(opts, slot.option) for slot in families.get(family).model_files}
    files = model_files.as_options(model_files.pick(model, chosen, source.listing, source.resolve))
    run_dir = tmp_path / "runs" / f"{family}-{abs(hash(name))}"
    run_dir.mkdir(parents=True)
    device = (
        "gpu"
        if opts.device == "gpu" or any(k in values for k in ("num_processes", "gpu_ids", "num_machines"))
        else "cpu"
    )
    state = run_dir / "p1-000001-state" if opts.resume else None  # a resumed run names its state
    target = Target(
        ds,
        model,
        install,
        device,
        run_dir,
        logging_dir=tmp_path / "logs",
        model_files=files,
        resume_state=state,
    )
    cmd = build_command(opts, target)
    (run_dir / "config.toml").write_text(toml_writer.dumps(cmd.config), encoding="utf-8")
    write_dataset_copy(ds, cmd.dataset_patch, run_dir / "dataset.toml")
    if cmd.prompts:
        (run_dir / "prompts.txt").write_text(cmd.prompts, encoding="utf-8")
    expect = {**expected(opts), **kv_expected(opts)}
    return argcheck.Case(f"{family} {name}", cmd.argv, cmd.config, expect, dataset_expected(opts))


@pytest.mark.parametrize("family", list(BASES))
def test_every_family_setting_is_taken_by_its_trainer_as_meant(family, tmp_path, world, kohya_python):
    install = world[0]
    cases = [build_case(tmp_path, family, n, v, world) for n, v in setting_cases(family)]
    results = argcheck.check(kohya_python, install.scripts_dir, cases)
    found = [p for case, res in zip(cases, results, strict=True) for p in argcheck.problems(case, res)]
    keys = {k for case in cases for k in case.keys()}
    script = families.get(family).script
    print(
        f"\n{family} ({script}): {len(cases)} commands, {len(keys)} distinct keys checked, {len(found)} problems"
    )
    assert not found, "\n".join(found)


# The training features together, as a user of each family would set them (resume from a state, LoRA+
# and dropouts through the family's own module, Prodigy's args, caption settings, accumulation).
FEATURES = {
    "resume": "latest",
    "save_state": True,
    "save_last_n_epochs_state": 2,
    "network_args": "loraplus_lr_ratio=16 loraplus_text_encoder_lr_ratio=4",
    "rank_dropout": 0.1,
    "module_dropout": 0.05,
    "network_dropout": 0.1,
    "optimizer": "Prodigy",
    "learning_rate": 1.0,
    "optimizer_args": "decouple=True weight_decay=0.01 betas=0.9,0.99 d_coef=2",
    "gradient_accumulation_steps": 2,
    "lr_warmup_ratio": 0.05,
    "keep_tokens": 1,
    "caption_tag_dropout_rate": 0.1,
    "flip_aug": True,
}


@pytest.mark.parametrize("family", list(BASES))
def test_the_training_features_together_are_taken_by_each_family_trainer(
    family, tmp_path, world, kohya_python
):
    install = world[0]
    values = dict(FEATURES)
    if not families.get(family).trains_text_encoder:
        values["train_text_encoder"] = False
    cases = [
        build_case(tmp_path, family, "features", values, world),
        build_case(
            tmp_path,
            family,
            "continue",
            {"network_weights": "/tmp/lora.safetensors", "dim_from_weights": True},
            world,
        ),
    ]
    results = argcheck.check(kohya_python, install.scripts_dir, cases)
    found = [p for case, res in zip(cases, results, strict=True) for p in argcheck.problems(case, res)]
    print(f"\n{family}: features as {families.get(family).script} parsed them: {len(found)} problems; "
          f"resume={results[0].values.get('resume')!r} network_args={results[0].values.get('network_args')}")  # fmt: skip
    assert not found, "\n".join(found)
    assert results[0].values["network_args"][-2:] == [
        "loraplus_lr_ratio=16.0",
        "loraplus_text_encoder_lr_ratio=4.0",
    ]


@pytest.mark.parametrize(
    ("family", "section", "key", "value", "problem"),
    [
        ("flux", "training", "guidance_scal", 1.0, "no option 'guidance_scal'"),  # misspelled
        ("flux", "training", "system_prompt", "x", "no option 'system_prompt'"),  # Lumina's, not FLUX's
        ("lumina2", "training", "guidance_scale", 1.0, "no option 'guidance_scale'"),  # FLUX's, not Lumina's
        ("chroma", "model", "apply_t5_attn_mask", False, "apply_t5_attn_mask must be True for Chroma"),
    ],
)
def test_a_wrong_or_misplaced_family_option_fails_in_sd_scripts(
    family, section, key, value, problem, tmp_path, world, kohya_python
):
    install = world[0]
    case = build_case(tmp_path, family, "bad", {}, world)
    if key == "apply_t5_attn_mask":  # what sd-scripts' own check says when Chroma's mask is dropped
        for sec in case.config.values():
            sec.pop(key, None)
    else:
        case.config[section][key] = value
    cfg = next(a for a in case.argv if a.endswith("config.toml"))
    with open(cfg, "w", encoding="utf-8") as f:
        f.write(toml_writer.dumps(case.config))
    (res,) = argcheck.check(kohya_python, install.scripts_dir, [case])
    found = argcheck.problems(case, res)
    print(f"\n{family} {key}: {found}")
    assert any(problem in p for p in found), found


def test_where_each_family_option_goes_is_the_trainers_config(tmp_path, world):
    """A family option sits under the config section the table names (sd-scripts flattens sections, so
    a wrong section is harmless there but would mislead the reader of config.toml)."""
    case = build_case(tmp_path, "flux", "defaults", {}, world)
    for s in SETTINGS:
        if s.where is Where.CONFIG and "flux" in s.families and s.sd_name in case.keys() and s.section:
            assert s.sd_name in case.config.get(s.section, {}), s.name
