"""Validation in one place: every setting's own checks (generated from the table), the cross-field
rules, the CPU and model-family checks; each failure is a sentence naming the setting."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lora_workbench.errors import ValidationError
from lora_workbench.training import families
from lora_workbench.training.options import TrainOptions
from lora_workbench.training.settings import SETTINGS
from lora_workbench.training.validation import check_device, check_family, check_setting, validate


def opts(**kw) -> TrainOptions:
    return TrainOptions.from_values(kw)


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"width": 500}, "width is 500; no trainer takes it; they need a multiple of 16"),
        ({"height": 520, "buckets": "on"}, None),
        ({"height": 522, "buckets": "on"}, "multiple of 8"),
        ({"epochs": -1}, "epochs is -1; set it between 0"),
        (
            {"buckets": "on", "width": 128, "height": 192},
            "min_bucket_reso 256 is above the training size 128x192.*set min_bucket_reso to 128 or less",
        ),
        (
            {"buckets": "on", "width": 1024, "height": 1088},
            "max_bucket_reso 1024 is below the training size 1024x1088.*set max_bucket_reso to 1088 or more",
        ),
        ({"network_dim": 5000}, "network_dim is 5000"),
        ({"learning_rate": float("nan")}, "finite"),
        ({"output_name": "../evil"}, "output_name '../evil' may only hold"),
        ({"output_name": "a b"}, "may only hold"),
        ({"output_name": "name\n"}, "may only hold"),  # fullmatch: no trailing newline through `$`
        ({"sample_sampler": "dpmpp_2m"}, "sample_sampler is 'dpmpp_2m'; choose one of: ddim"),
        ({"optimizer": "adamw; rm"}, "optimizer"),
        ({"lr_scheduler": "constant", "lr_warmup_steps": 10}, "constant' takes no warmup"),
        ({"launcher": "python", "num_processes": 2}, "launcher 'accelerate'"),
        ({"num_machines": 2}, "main_process_ip"),
        ({"num_machines": 2, "main_process_ip": "10.0.0.1", "machine_rank": 2}, "below num_machines"),
        ({"gpu_ids": "0;1"}, "gpu_ids"),
        ({"gpu_ids": "0,1\n"}, "gpu_ids"),
        ({"main_process_ip": "--config_file=/tmp/x"}, "is not an address"),
        ({"num_machines": 2, "main_process_ip": "-h"}, "main_process_ip"),
        ({"caption_extension": "txt"}, "caption_extension 'txt' must look like '.txt'"),
        ({"buckets": "on", "min_bucket_reso": 1024, "max_bucket_reso": 512}, "swap them"),
        ({"learning_rate": 0.0, "unet_lr": 0.0}, "nothing would be learned"),
        ({"device": "cpu", "mixed_precision": "fp16"}, "fp16 needs a GPU"),
        ({"device": "cpu", "optimizer": "AdamW8bit"}, "bitsandbytes"),
        ({"device": "cpu", "attention": "xformers"}, "xformers needs a GPU"),
        ({"device": "cpu", "num_processes": 2}, "num_processes 2 needs a GPU"),
    ],
)
def test_validation_names_the_setting_and_what_to_do(kw, match):
    if match is None:
        validate(opts(**kw))
        return
    with pytest.raises(ValidationError, match=match):
        validate(opts(**kw))


def test_alpha_above_dim_is_a_warning():
    warnings = validate(opts(network_dim=8, network_alpha=16))
    assert any("keep alpha <= dim" in w for w in warnings)


def test_every_setting_has_its_own_checks():
    """The validation test of the settings table: each setting's default and example pass, a value of
    the wrong type fails naming it, and bounds/choices/patterns refuse what is outside them."""
    wrong = {bool: "yes", int: "3", float: "0.1", str: 3}
    for s in SETTINGS:
        check_setting(s, s.default)
        check_setting(s, s.example_value())
        with pytest.raises(ValidationError, match=rf"^{s.name} must be"):
            check_setting(s, wrong[s.type])
        if s.high is not None:
            with pytest.raises(ValidationError, match=rf"^{s.name} is"):
                check_setting(s, s.type(s.high + 1))
        if s.choices:
            with pytest.raises(ValidationError, match=rf"^{s.name} is 'nope'"):
                check_setting(s, "nope")
        if s.pattern is not None:
            with pytest.raises(ValidationError, match=rf"^{s.name} '-x y'"):
                check_setting(s, "-x y")


def test_every_example_passes_validation_with_what_it_needs():
    for s in SETTINGS:
        validate(opts(**{**s.example_with, s.name: s.example_value()}))


def test_gpu_only_values_are_refused_on_the_cpu_only():
    for s in SETTINGS:
        for value in s.gpu_only_values:
            check_device(opts(**{s.name: value}), "gpu")
            with pytest.raises(ValidationError, match=f"{s.name} {value} needs a GPU"):
                check_device(opts(**{s.name: value}), "cpu")


def test_family_only_settings():
    check_family(opts(v_parameterization=True), "sd2")
    with pytest.raises(ValidationError, match="applies only to SD 2.x .* this base model is SD 1.x"):
        check_family(opts(v_parameterization=True), "sd1")
    check_family(opts(), "flux")  # defaults never count as given


def test_a_timestep_sampling_of_a_familys_own_is_named_as_that_familys_for_any_other():
    check_family(opts(timestep_sampling="nextdit_shift"), "lumina2")
    with pytest.raises(
        ValidationError,
        match=r"^timestep_sampling nextdit_shift is Lumina Image 2\.0's; FLUX\.1's trainer takes sigma, "
        r"uniform, sigmoid, shift or flux_shift \(or auto\)\.$",
    ):
        check_family(opts(timestep_sampling="nextdit_shift"), "flux")
    with pytest.raises(ValidationError, match=r"Lumina Image 2\.0's; Wan's trainer takes .*qwen_shift"):
        check_family(opts(timestep_sampling="nextdit_shift"), "wan")  # musubi's own list


def test_which_family_owns_a_timestep_sampling_is_recipe_data(monkeypatch):
    def own(family_id, samplings):
        changed = replace(families.get(family_id), own_timestep_samplings=samplings)
        monkeypatch.setitem(families.FAMILIES, family_id, changed)
        listed = [changed if f.id == family_id else f for f in families.FAMILY_LIST]
        monkeypatch.setattr(families, "FAMILY_LIST", tuple(listed))

    own("flux", ("nextdit_shift",))
    check_family(opts(timestep_sampling="nextdit_shift"), "flux")
    with pytest.raises(ValidationError, match=r"nextdit_shift is FLUX\.1 and Lumina Image 2\.0's; Chroma"):
        check_family(opts(timestep_sampling="nextdit_shift"), "chroma")
    own("lumina2", ())
    with pytest.raises(ValidationError, match=r"nextdit_shift is FLUX\.1's; Lumina Image 2\.0's trainer"):
        check_family(opts(timestep_sampling="nextdit_shift"), "lumina2")


def test_without_buckets_sd_scripts_needs_sizes_in_64s_and_musubi_takes_wans_832x480():
    with pytest.raises(
        ValidationError,
        match=r"width is 496; sd-scripts needs for SD 1.x a multiple of 64 \(8 with buckets on\)",
    ):
        check_family(opts(width=496, height=512), "sd1")
    with pytest.raises(ValidationError, match="height is 480; sd-scripts needs for SD 1.x a multiple of 64"):
        check_family(opts(width=832, height=480), "sd1")
    check_family(opts(width=832, height=480, task="t2v-1.3B"), "wan", "t2v-1.3B")  # musubi buckets by 16
    with pytest.raises(
        ValidationError, match="height is 488; musubi-tuner needs for Wan.* a multiple of 16:"
    ):
        check_family(opts(width=832, height=488), "wan", "t2v-1.3B")
    with pytest.raises(
        ValidationError, match="height is 488; musubi-tuner needs for Wan.* a multiple of 16:"
    ):
        check_family(opts(width=832, height=488, buckets="on"), "wan", "t2v-1.3B")  # buckets or not
