"""The command for every family: its script, network module, extra files as sd-scripts options, the
family options at sd-scripts' advice, its own sample settings; and the sentences for a setting given
to the wrong family. (sd-scripts' own parser checks the same commands in the integration tier.)"""

from __future__ import annotations

import pytest

from lora_workbench.dataset.dataset_toml import dataset_from_toml
from lora_workbench.errors import ValidationError
from lora_workbench.modelfiles.detect import detect_model
from lora_workbench.training import device_probe, kohya, train
from lora_workbench.training.command import Target, build_command
from lora_workbench.training.model_files import FileSource
from lora_workbench.training.options import TrainOptions
from tests.unit import synthetic_models as sm
from tests.unit import train_fakes as fakes

BASES = {
    "flux": lambda: sm.flux("dev"),
    "schnell": lambda: sm.flux("schnell"),
    "chroma": sm.chroma,
    "sd3": lambda: sm.sd3_checkpoint("3.5-large", with_text_encoders=False),
    "lumina2": sm.lumina2,
    "hunyuan_image": sm.hunyuan_image,
    "anima": sm.anima,
    "sdxl": fakes.sdxl_tensors,
}
FILES = {"clip_l": "/m/clip_l.safetensors", "t5xxl": "/m/t5.safetensors", "ae": "/m/ae.safetensors"}


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    fakes.make_kohya(tmp_path, monkeypatch)
    project = fakes.make_project(tmp_path)
    return dataset_from_toml(project / "dataset.toml", project)


def build(tmp_path, ds, base: str, files=None, **values):
    ckpt = sm.write_model(tmp_path / f"{base}.safetensors", BASES[base]())
    opts = TrainOptions.from_values({"sample_prompts": "subject, a photo", **values})
    model = detect_model(ckpt, opts.model_type)
    target = Target(ds, model, kohya.find_install(), "gpu", tmp_path / "out", model_files=dict(files or {}))
    cmd = build_command(opts, target)
    return cmd, {k: v for sec in cmd.config.values() for k, v in sec.items()}


def test_flux_gets_its_script_module_files_and_recommended_options(tmp_path, env):
    cmd, flat = build(tmp_path, env, "flux", FILES)
    assert cmd.script == "flux_train_network.py" and cmd.argv[-3].endswith("flux_train_network.py")
    assert flat["network_module"] == "networks.lora_flux"
    assert {k: flat[k] for k in FILES} == FILES
    assert (flat["guidance_scale"], flat["timestep_sampling"], flat["model_prediction_type"]) == (
        1.0,
        "flux_shift",
        "raw",
    )
    assert flat["discrete_flow_shift"] == 3.1582 and flat["cache_text_encoder_outputs"] is True
    assert "model_type" not in flat and "network_train_unet_only" not in flat  # CLIP-L's LoRA trains
    assert cmd.prompts.strip().endswith("--s 20 --l 1 --g 3.5")


def test_family_options_given_by_hand_win_over_the_advice(tmp_path, env):
    _, flat = build(
        tmp_path, env, "flux", FILES, guidance_scale=3.5, timestep_sampling="shift", discrete_flow_shift=2.0,
        fp8_base=True, blocks_to_swap=18, cache_text_encoder_outputs="off", apply_t5_attn_mask=True,
    )  # fmt: skip
    assert (flat["guidance_scale"], flat["timestep_sampling"], flat["discrete_flow_shift"]) == (
        3.5,
        "shift",
        2.0,
    )
    assert flat["fp8_base"] is True and flat["blocks_to_swap"] == 18 and flat["apply_t5_attn_mask"] is True
    assert "cache_text_encoder_outputs" not in flat


def test_schnell_samples_in_four_steps(tmp_path, env):
    cmd, _ = build(tmp_path, env, "schnell", FILES)
    assert " --s 4 " in cmd.prompts and cmd.prompts.rstrip().endswith("--g 0")
    cmd, _ = build(tmp_path, env, "schnell", FILES, sample_steps=12)
    assert " --s 12 " in cmd.prompts


def test_chroma_is_flux_train_network_with_model_type_chroma(tmp_path, env):
    files = {"t5xxl": FILES["t5xxl"], "ae": FILES["ae"]}
    cmd, flat = build(tmp_path, env, "chroma", files)
    assert cmd.script == "flux_train_network.py" and flat["model_type"] == "chroma"
    assert flat["apply_t5_attn_mask"] is True and flat["guidance_scale"] == 0.0 and "clip_l" not in flat
    assert flat["timestep_sampling"] == "sigmoid" and flat["network_train_unet_only"] is True
    assert " --n low quality" in cmd.prompts and " --g 0 " in cmd.prompts


@pytest.mark.parametrize(
    ("base", "script", "module", "expected"),
    [
        (
            "sd3",
            "sd3_train_network.py",
            "networks.lora_sd3",
            {"training_shift": 1.0, "t5xxl_max_token_length": 256},
        ),
        (
            "lumina2",
            "lumina_train_network.py",
            "networks.lora_lumina",
            {
                "timestep_sampling": "nextdit_shift",
                "discrete_flow_shift": 6.0,
                "gemma2_max_token_length": 256,
            },
        ),
        (
            "hunyuan_image",
            "hunyuan_image_train_network.py",
            "networks.lora_hunyuan_image",
            {"discrete_flow_shift": 5.0, "network_train_unet_only": True, "model_prediction_type": "raw"},
        ),
        (
            "anima",
            "anima_train_network.py",
            "networks.lora_anima",
            {"timestep_sampling": "sigmoid", "vae_chunk_size": 64, "network_train_unet_only": True},
        ),
    ],
)
def test_each_family_gets_its_script_module_and_advice(tmp_path, env, base, script, module, expected):
    cmd, flat = build(tmp_path, env, base)
    assert cmd.script == script and flat["network_module"] == module
    assert {k: flat.get(k) for k in expected} == expected
    assert flat["cache_text_encoder_outputs"] is True


def test_lumina_writes_its_system_prompt_as_an_escaped_value(tmp_path, env):
    from lora_workbench import toml_writer
    from lora_workbench.dataset.dataset_toml import tomllib

    prompt = 'You draw "art"\n--output_dir /etc'
    cmd, flat = build(tmp_path, env, "lumina2", system_prompt=prompt)
    assert tomllib.loads(toml_writer.dumps(cmd.config))["training"]["system_prompt"] == prompt
    assert not any("/etc" in a for a in cmd.argv)


def test_sdxl_is_unchanged_and_caches_text_encoders_only_when_asked(tmp_path, env):
    cmd, flat = build(tmp_path, env, "sdxl")
    assert cmd.script == "sdxl_train_network.py" and flat["network_module"] == "networks.lora"
    assert (
        "cache_text_encoder_outputs" not in flat and " --l " not in cmd.prompts and " --s 25" in cmd.prompts
    )
    _, flat = build(tmp_path, env, "sdxl", cache_text_encoder_outputs="on", train_text_encoder=False)
    assert flat["cache_text_encoder_outputs"] is True and flat["network_train_unet_only"] is True


@pytest.mark.parametrize(
    ("base", "values", "message"),
    [
        (
            "sdxl",
            {"guidance_scale": 3.5},
            r"guidance_scale applies only to FLUX\.1, Chroma.* base models .* SDXL",
        ),
        ("flux", {"system_prompt": "x"}, r"system_prompt applies only to Lumina Image 2\.0"),
        ("flux", {"clip_g": "clip_g.safetensors"}, r"clip_g applies only to SD3 .* FLUX\.1"),
        ("chroma", {"clip_l": "clip_l.safetensors"}, r"clip_l applies only to FLUX\.1, SD3.* Chroma"),
        ("sdxl", {"network_module": "networks.lora_flux"}, r"networks\.lora_flux does not train SDXL"),
        ("flux", {"timestep_sampling": "nextdit_shift"}, r"nextdit_shift is Lumina Image 2\.0's"),
        ("flux", {"blocks_to_swap": 36}, r"swaps at most 35 blocks"),
        ("anima", {"fp8_base": True, "device": "gpu"}, r"fp8_base applies only to .* Anima"),
        ("sdxl", {"blocks_to_swap": 4}, r"blocks_to_swap applies only to SD3"),
    ],
)
def test_an_option_for_another_family_is_a_clear_error(tmp_path, env, base, values, message):
    with pytest.raises(ValidationError, match=message):
        build(tmp_path, env, base, FILES if base == "flux" else None, **values)


def _comfy_folders(tmp_path):
    root = tmp_path / "ComfyUI/models"
    for name, tensors in (("clip_l.safetensors", sm.clip_l()), ("t5xxl_fp16.safetensors", sm.t5xxl())):
        sm.write_model(root / "text_encoders" / name, tensors)
    sm.write_model(root / "vae/ae.safetensors", sm.flux_ae())

    def resolve(folder, name):
        p = root / folder / name
        return str(p) if p.is_file() else None

    listing = {f: sorted(p.name for p in (root / f).iterdir()) for f in ("text_encoders", "vae")}
    return root, FileSource(listing, resolve)


def test_prepare_picks_the_files_and_they_are_part_of_the_cache_key(tmp_path, env):
    root, source = _comfy_folders(tmp_path)
    base = sm.write_model(tmp_path / "flux1-dev.safetensors", sm.flux("dev"))
    opts = TrainOptions.from_values({"device": "gpu"})
    prep = train.prepare(opts, env, base, device="gpu", files=source)
    assert prep.model_files == {
        "clip_l": str(root / "text_encoders/clip_l.safetensors"),
        "t5xxl": str(root / "text_encoders/t5xxl_fp16.safetensors"),
        "ae": str(root / "vae/ae.safetensors"),
    }
    plan = train.build(prep, tmp_path / "run")
    assert plan.job.config["model"]["t5xxl"] == prep.model_files["t5xxl"]
    sm.write_model(root / "text_encoders/t5xxl_fp16.safetensors", sm.t5xxl(blocks=23))  # a different file
    assert train.prepare(opts, env, base, device="gpu", files=source).fingerprint != prep.fingerprint


def test_prepare_names_a_missing_file_before_launch(tmp_path, env):
    _, source = _comfy_folders(tmp_path)
    empty = FileSource({"text_encoders": ["clip_l.safetensors"], "vae": ["ae.safetensors"]}, source.resolve)
    base = sm.write_model(tmp_path / "flux1-dev.safetensors", sm.flux("dev"))
    with pytest.raises(
        ValidationError, match=r"needs a T5-XXL text encoder \(--t5xxl\).*models/text_encoders"
    ):
        train.prepare(
            TrainOptions.from_values({"clip_l": "clip_l.safetensors"}), env, base, device="gpu", files=empty
        )


def test_a_run_that_will_not_fit_the_gpu_is_a_warning_with_what_to_change(tmp_path, env, monkeypatch):
    _, source = _comfy_folders(tmp_path)
    base = sm.write_model(tmp_path / "flux1-dev.safetensors", sm.flux("dev"))
    monkeypatch.setenv(device_probe.GPU_MEMORY_ENV, "12")
    opts = TrainOptions.from_values({"width": 1024, "height": 1024, "network_dim": 16})
    prep = train.prepare(opts, env, base, device="gpu", files=source)
    assert prep.memory.verdict == "too_big"
    note = next(w for w in prep.warnings if "GPU memory" in w)
    assert "it will not fit" in note and "fp8_base" in note and "blocks_to_swap" in note
    fits = train.prepare(
        opts.replace(fp8_base=True, blocks_to_swap=20), env, base, device="gpu", files=source
    )
    assert fits.memory.verdict == "fits" and not any("GPU memory" in w for w in fits.warnings)
    cpu = train.prepare(opts, env, base, device="cpu", files=source)
    assert cpu.memory is None
