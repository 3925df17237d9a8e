"""The musubi-tuner backend builds one Job per run: cache latents, cache text-encoder outputs, train and,
where ComfyUI needs it, convert; its config and dataset config read back as written; what musubi
cannot do is a sentence before anything starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lora_workbench.dataset.dataset_toml import dataset_from_toml, tomllib
from lora_workbench.errors import ValidationError
from lora_workbench.training.backends import for_family
from lora_workbench.training.options import TrainOptions
from tests.unit.training.musubi_fakes import (
    FAMILY_VARIANTS,
    MUSUBI,
    TRAIN_SCRIPTS,
    after_script,
    build,
    files_for,
    make_project,
    paired,
    step,
    target,
)


@pytest.fixture
def project(tmp_path, monkeypatch):
    return make_project(tmp_path, monkeypatch)


# --------------------------------------------------------------------------- each family's Job
@pytest.mark.parametrize("family", FAMILY_VARIANTS)
def test_a_run_caches_latents_then_text_encoder_outputs_then_trains(project, family):
    t = paired(project, family) if family == "flux_kontext" else target(project, family)
    job = build(t, sample_prompts="a photo")
    names = [s.name for s in job.steps]
    convert = ["convert"] if family in ("z_image", "hunyuan_video_1_5") else []
    assert names == ["cache_latents", "cache_text_encoder_outputs", "train", *convert]
    assert job.backend == "musubi-tuner" and job.script == TRAIN_SCRIPTS[family]
    train = step(job, "train")
    assert train.argv[:3] == (str(MUSUBI.python), "-m", "accelerate.commands.launch")
    assert after_script(train.argv) == ["--config_file", str(t.config_path)]
    assert train.parser.module == f"musubi_tuner.{TRAIN_SCRIPTS[family][:-3]}" and train.parser.sys_path == (
        "src",
    )
    for name in ("cache_latents", "cache_text_encoder_outputs"):
        cache = step(job, name)
        assert cache.argv[1].startswith("/opt/musubi-tuner/src/musubi_tuner/") and cache.argv[0] == str(
            MUSUBI.python
        )
        assert after_script(cache.argv)[:2] == ["--dataset_config", str(t.dataset_toml)]
        assert cache.reuse_key and cache.reuse_marker.startswith(str(project / "cache" / "musubi" / family))
        assert cache.progress == "count" and cache.cwd == str(MUSUBI.root)
    assert set(job.files) == {"config.toml", "dataset.toml", "prompts.txt"}


@pytest.mark.parametrize("family", FAMILY_VARIANTS)
def test_the_config_and_dataset_config_read_back_as_written(project, family):
    t = paired(project, family) if family == "flux_kontext" else target(project, family)
    job = build(t)
    config = tomllib.loads(job.files["config.toml"])
    assert config == job.config
    _, recipe = for_family(family)
    assert config["model"]["dit"] == "/models/diffusion_models/dit.safetensors"
    assert config["network"]["network_module"] == recipe.network_modules[0]
    assert config["dataset"]["dataset_config"] == str(t.dataset_toml)
    assert config["training"]["mixed_precision"] == "bf16"
    assert config["training"]["timestep_sampling"] == recipe.recommended["timestep_sampling"]
    assert config["saving"] == {
        "output_dir": str(t.run_dir),
        "output_name": "p1",
        "save_every_n_epochs": 1,
        "save_precision": "fp16",
    }
    data = tomllib.loads(job.files["dataset.toml"])
    assert data["general"]["resolution"] == [64, 64] and data["general"]["caption_extension"] == ".txt"
    (table,) = data["datasets"]
    assert table["image_directory"] == t.dataset.subsets[0].image_dir and table["num_repeats"] == 2
    assert table["cache_directory"] == str(project / "cache" / "musubi" / family / "01_subject")


def test_the_conversion_writes_the_copy_comfyui_loads(project):
    job = build(target(project, "z_image"))
    convert = step(job, "convert")
    trained = str(project / "output" / "run-001" / "p1.safetensors")
    # musubi's own Z-Image-to-ComfyUI converter fuses q/k/v as ComfyUI's model has them
    assert convert.argv[1].endswith("networks/convert_z_image_lora_to_comfy.py")
    assert after_script(convert.argv) == [trained, job.final_path]
    assert job.final_name == "p1_comfy.safetensors" and job.trained_path == trained
    hv = build(target(project, "hunyuan_video_1_5"))
    assert after_script(step(hv, "convert").argv) == [hv.trained_path, hv.final_path]
    wan = build(target(project, "wan"))
    assert wan.final_name == "p1.safetensors" and "convert" not in [s.name for s in wan.steps]


def test_print_command_shows_every_step_and_every_file(project):
    job = build(target(project, "wan"), sample_prompts="a photo")
    text = job.display()
    for s in job.steps:
        assert s.display() in text
    assert "[[datasets]]" in text and "[model]" in text and "a photo --w 64" in text


# --------------------------------------------------------------------------- variants and files
def test_wan_tasks_reach_the_trainer_and_the_i2v_caches(project):
    t2v = build(target(project, "wan", "t2v-1.3B"))
    assert t2v.config["model"]["task"] == "t2v-1.3B" and "clip" not in t2v.config["model"]
    assert "--i2v" not in step(t2v, "cache_latents").argv
    i2v = build(target(project, "wan", "i2v-14B"))
    latents = after_script(step(i2v, "cache_latents").argv)
    assert "--i2v" in latents and latents[latents.index("--clip") + 1].endswith(".pth")
    wan22 = build(target(project, "wan", "i2v-A14B"))
    assert "--i2v" in step(wan22, "cache_latents").argv and "--clip" not in step(wan22, "cache_latents").argv
    assert "--task" not in step(wan22, "cache_text_encoder_outputs").argv  # the caches take no task


def test_a_wan_task_musubi_lacks_or_a_file_without_one_is_a_sentence(project):
    with pytest.raises(ValidationError, match="cannot train Wan 2.2 TI2V-5B"):
        build(target(project, "wan", "ti2v-5B"))
    with pytest.raises(ValidationError, match="set task"):
        build(target(project, "wan", ""))
    assert build(target(project, "wan", ""), task="t2v-14B").config["model"]["task"] == "t2v-14B"


def test_the_version_setting_overrides_what_the_file_says(project):
    t = paired(project, "qwen_image", "")  # an edit model learns from image pairs
    job = build(t, model_version="edit-2511")
    assert job.config["model"]["model_version"] == "edit-2511"
    for name in ("cache_latents", "cache_text_encoder_outputs"):
        argv = after_script(step(job, name).argv)
        assert argv[argv.index("--model_version") + 1] == "edit-2511"
    with pytest.raises(ValidationError, match="model_version dev is not a Qwen-Image model_version"):
        build(target(project, "qwen_image"), model_version="dev")


def test_image_pair_families_need_control_images(project):
    with pytest.raises(ValidationError, match="FLUX.1 Kontext learns from image pairs.*'subject'"):
        build(target(project, "flux_kontext"))
    with pytest.raises(ValidationError, match="Qwen-Image-Edit learns from image pairs"):
        build(target(project, "qwen_image", "edit"))
    t = paired(project, "flux_kontext")
    data = tomllib.loads(build(t).files["dataset.toml"])
    assert data["datasets"][0]["control_directory"] == t.dataset.subsets[0].control_dir


def test_flux2_klein_trains_with_its_qwen3_encoder(project):
    _, recipe = for_family("flux2")
    assert [f.kind for f in recipe.model_files if f.needed_for("klein-4b")] == ["flux2_vae", "qwen3"]
    files = {**files_for("flux2"), "text_encoder": "/models/text_encoders/qwen_3_4b.safetensors"}
    job = build(target(project, "flux2", "klein-4b", files=files))
    argv = after_script(step(job, "cache_text_encoder_outputs").argv)
    assert argv[argv.index("--text_encoder") + 1] == "/models/text_encoders/qwen_3_4b.safetensors"
    assert argv[argv.index("--model_version") + 1] == "klein-4b"


def test_a_missing_model_file_names_the_file_and_where_comfyui_keeps_it(project):
    files = {k: v for k, v in files_for("qwen_image").items() if k != "vae"}
    with pytest.raises(
        ValidationError, match=r"Qwen-Image VAE \(--vae\).*qwen_image_vae\.safetensors.*models/vae"
    ):
        build(target(project, "qwen_image", files=files))


def test_hunyuan_video_i2v_caches_the_image_features(project):
    job = build(target(project, "hunyuan_video_1_5", "i2v"))
    latents = after_script(step(job, "cache_latents").argv)
    assert "--i2v" in latents and "--image_encoder" in latents
    assert job.config["model"]["task"] == "i2v" and "image_encoder" in job.config["model"]


def test_fp8_and_memory_savers_go_to_the_steps_that_take_them(project):
    job = build(
        target(project, "qwen_image"),
        fp8_base=True,
        fp8_scaled=True,
        fp8_text_encoder=True,
        blocks_to_swap=20,
    )
    assert "--fp8_vl" in step(job, "cache_text_encoder_outputs").argv
    assert {"fp8_base", "fp8_scaled", "blocks_to_swap"} <= set(job.config["training"])
    assert job.config["model"]["fp8_vl"] is True
    wan = build(target(project, "wan"), vae_cache_cpu=True, fp8_text_encoder=True)
    assert (
        "--vae_cache_cpu" in step(wan, "cache_latents").argv
        and "--fp8_t5" in step(wan, "cache_text_encoder_outputs").argv
    )


def test_a_cpu_run_caches_and_trains_on_the_cpu(project):
    job = build(target(project, "z_image", device="cpu"))
    assert job.mixed_precision == "no" and "--cpu" in step(job, "train").argv
    for name in ("cache_latents", "cache_text_encoder_outputs"):
        assert step(job, name).argv[-2:] == ("--device", "cpu")


def test_a_resumed_run_writes_its_own_config_and_resumes_from_the_state(project):
    t = target(project, "wan")
    state = t.run_dir / "p1-000002-state"
    from dataclasses import replace

    t = replace(t, resume_state=state, config_name="config-resume-1.toml")
    job = build(t)
    assert "config-resume-1.toml" in job.files and job.config["saving"]["resume"] == str(state)
    assert after_script(step(job, "train").argv) == ["--config_file", str(t.run_dir / "config-resume-1.toml")]


# --------------------------------------------------------------------------- hostile names
def test_hostile_subset_names_stay_values_and_cache_folders_stay_plain(project, tmp_path):
    ds = dataset_from_toml(project / "dataset.toml", project)
    evil = project / "images" / "2_x']\n[[datasets]]\nimage_directory = '/etc\" #"
    evil.mkdir(parents=True)
    sub = ds.subsets[0]
    ds.subsets.append(type(sub)(name=evil.name[2:], image_dir=str(evil), images=1, repeats=1))
    job = build(target(project, "wan", dataset=ds))
    data = tomllib.loads(job.files["dataset.toml"])
    assert [d["image_directory"] for d in data["datasets"]] == [sub.image_dir, str(evil)]
    cache = Path(data["datasets"][1]["cache_directory"])
    assert cache.parent == project / "cache" / "musubi" / "wan" and cache.name.startswith("02_")
    assert all(c.isalnum() or c in "._-" for c in cache.name)


# --------------------------------------------------------------------------- refusals
def test_what_musubi_cannot_do_is_a_sentence(project):
    ds = dataset_from_toml(project / "dataset.toml", project)
    ds.subsets[0].is_reg = True
    with pytest.raises(ValidationError, match="regularization images.*set its weight to 0"):
        build(target(project, "wan", dataset=ds))
    t = target(project, "z_image")
    from dataclasses import replace

    with pytest.raises(ValidationError, match="sets shuffle_caption per subset.*clear caption_options"):
        build(replace(t, dataset_captions=("shuffle_caption",)))
    with pytest.raises(ValidationError, match="shuffle_caption applies only to"):
        build(target(project, "z_image"), shuffle_caption=True)
    with pytest.raises(ValidationError, match="noise_offset applies only to"):
        build(target(project, "wan"), noise_offset=0.05)
    with pytest.raises(ValidationError, match="optimizer Lion is not one Wan's trainer can build"):
        build(target(project, "wan"), optimizer="Lion")
    with pytest.raises(ValidationError, match="nextdit_shift"):
        build(target(project, "wan"), timestep_sampling="nextdit_shift")
    with pytest.raises(ValidationError, match="needs an attention"):
        build(target(project, "wan"), attention="none")
    with pytest.raises(ValidationError, match="target_frames holds 24.*use 21 or 25"):
        build(target(project, "wan"), target_frames="1,24")


def test_a_video_subset_trains_only_on_a_video_family(project):
    ds = dataset_from_toml(project / "dataset.toml", project)
    ds.subsets[0].kind = "video"
    job = build(
        target(project, "wan", dataset=ds), target_frames="1,25", frame_extraction="uniform", frame_sample=3
    )
    (table,) = tomllib.loads(job.files["dataset.toml"])["datasets"]
    assert table["video_directory"] == ds.subsets[0].image_dir and "image_directory" not in table
    assert (table["target_frames"], table["frame_extraction"], table["frame_sample"]) == (
        [1, 25],
        "uniform",
        3,
    )
    with pytest.raises(ValidationError, match="holds videos and Z-Image trains on images"):
        build(target(project, "z_image", dataset=ds))


def test_musubi_only_values_are_refused_on_sd_scripts_families():
    from lora_workbench.training.validation import check_family

    with pytest.raises(ValidationError, match="weighting_scheme applies only to"):
        check_family(TrainOptions.from_values({"weighting_scheme": "mode"}), "flux")
    with pytest.raises(ValidationError, match="qwen_shift is not one FLUX.1's trainer takes"):
        check_family(TrainOptions.from_values({"timestep_sampling": "qwen_shift"}), "flux")


def test_the_run_warns_that_every_image_needs_a_caption_file(project):
    job = build(target(project, "wan"))
    assert any("caption file" in w for w in job.warnings)


def test_no_file_is_written_while_building(project):
    before = sorted(os.walk(project))
    build(target(project, "framepack"))
    assert sorted(os.walk(project)) == before


def test_each_recipe_converts_exactly_where_the_outputs_table_says_comfyui_needs_it():
    from lora_workbench.training.backends.musubi import families as musubi_families
    from lora_workbench.training.backends.musubi import outputs

    for family_id, recipe in musubi_families.FAMILIES.items():
        row = outputs.output_for(family_id)
        assert (recipe.output == "convert") == row.converts, family_id
        if row.converts:  # the recipe's convert script is the table's (the checkout-relative path)
            assert row.script.endswith(recipe.steps["convert"]), family_id


def test_the_job_names_every_cache_folder_its_dataset_config_makes_musubi_write(project):
    from lora_workbench.training.backends.musubi.dataset_config import cache_folders

    job = build(target(project, "wan"))
    assert job.cache_dirs and list(job.cache_dirs) == cache_folders(job.files["dataset.toml"])


def test_a_cpu_run_of_wan_or_framepack_says_musubis_code_needs_cuda_before_anything_starts():
    from lora_workbench.training.backends import for_family

    for family in ("wan", "framepack"):
        assert "Found no NVIDIA driver" in for_family(family)[1].cpu_note
    assert not for_family("z_image")[1].cpu_note and not for_family("sd1")[1].cpu_note


def test_a_musubi_python_without_torch_is_named_with_musubis_variable(tmp_path):
    from lora_workbench.errors import ValidationError
    from lora_workbench.training import device_probe

    python = tmp_path / "python"
    python.write_text("#!/bin/sh\necho 'ModuleNotFoundError: No module named torch' >&2\nexit 1\n")
    python.chmod(0o755)
    with pytest.raises(ValidationError, match="musubi-tuner python .* set MUSUBI_PYTHON"):
        device_probe._ask(str(python), "musubi-tuner", "MUSUBI_PYTHON")
