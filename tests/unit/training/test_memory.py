"""The VRAM estimate before launch: close to sd-scripts' own tables, and when a run clearly does not
fit, the changes that make it fit."""

from __future__ import annotations

import pytest

from lora_workbench.training import families
from lora_workbench.training.memory import RunShape, estimate, peak_gib


@pytest.mark.parametrize(
    ("shape", "gpu", "verdicts"),
    [
        # docs/flux_train_network.md, "Recommended Settings by GPU Memory" (all with --fp8_base)
        (RunShape("flux", fp8=True, batch=2), 24, {"fits"}),
        (RunShape("flux", fp8=True, blocks_to_swap=16, optimizer="AdamW8bit"), 12, {"fits", "tight"}),
        (RunShape("flux", fp8=True, blocks_to_swap=22, optimizer="AdamW8bit"), 10, {"fits", "tight"}),
        (RunShape("flux", fp8=True, blocks_to_swap=28, optimizer="AdamW8bit"), 8, {"fits", "tight"}),
        # docs/hunyuan_image_train_network.md: 24 GB with --fp8_scaled --blocks_to_swap 9
        (RunShape("hunyuan_image", width=2048, height=2048, fp8=True, blocks_to_swap=9), 24, {"fits"}),
        (
            RunShape("sd1", width=512, height=512, mixed_precision="fp16", train_text_encoder=True),
            8,
            {"fits"},
        ),
        (RunShape("flux"), 24, {"too_big"}),  # bf16 FLUX.1 alone is 22 GiB
        (RunShape("hunyuan_image", width=2048, height=2048), 24, {"too_big"}),
    ],
)
def test_estimates_agree_with_sd_scripts_vram_tables(shape, gpu, verdicts):
    assert estimate(shape, gpu).verdict in verdicts


def test_more_of_anything_costs_more_and_each_lever_saves():
    base = RunShape("flux", width=1024, height=1024)
    assert peak_gib(RunShape("flux", width=1536, height=1536)) > peak_gib(base)
    assert peak_gib(RunShape("flux", batch=4)) > peak_gib(base)
    assert peak_gib(RunShape("flux", gradient_checkpointing=False)) > peak_gib(base)
    assert peak_gib(RunShape("flux", fp8=True)) < peak_gib(base)
    assert peak_gib(RunShape("flux", blocks_to_swap=18)) < peak_gib(base)
    assert peak_gib(RunShape("flux", blocks_to_swap=99)) == peak_gib(RunShape("flux", blocks_to_swap=35))


def test_a_run_that_does_not_fit_says_what_to_change():
    est = estimate(RunShape("flux"), 16)
    assert est.verdict == "too_big"
    assert est.advice == [est.advice[0]] and "fp8_base" in est.advice[0] and "blocks_to_swap" in est.advice[0]
    assert "it will not fit" in est.message() and "GiB" in est.message()


def test_the_advice_names_the_families_own_options():
    assert "fp8_scaled" in estimate(RunShape("hunyuan_image", width=2048, height=2048), 24).advice[0]
    small = estimate(RunShape("hunyuan_image", width=2048, height=2048, fp8=True, blocks_to_swap=32), 12)
    assert "text_encoder_cpu" in small.advice[0]
    anima = estimate(RunShape("anima", width=2048, height=2048, batch=8, gradient_checkpointing=False), 8)
    assert "fp8" not in anima.advice[0]  # Anima has no fp8 option


def test_a_hopeless_run_says_so():
    est = estimate(RunShape("hunyuan_image", width=2048, height=2048), 4)
    assert "train on a GPU with more memory" in est.advice[0]


def test_no_gpu_size_means_no_verdict():
    est = estimate(RunShape("sdxl"))
    assert est.verdict == "unknown" and est.advice == [] and "about" in est.message()


def test_the_sd3_variants_differ():
    large = peak_gib(RunShape("sd3", variant="3.5-large"))
    medium = peak_gib(RunShape("sd3", variant="medium"))
    assert large > medium + 5  # medium is dominated by caching T5-XXL
    assert families.get("sd3").memory_for("3.5-large") is families.get("sd3").memory
