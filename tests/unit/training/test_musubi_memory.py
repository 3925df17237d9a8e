"""The VRAM estimate knows the musubi-tuner families: their sizes, fp8 and block swapping, video clips,
and the text-encoder cache as a peak of its own."""

from __future__ import annotations

from lora_workbench.training.memory import RunShape, advise, estimate, latent_frames, parts, peak_gib


def test_qwen_image_follows_musubis_vram_table():
    # docs/qwen_image.md, 1024x1024, batch 1: 42 GB, 30 GB with fp8, 24 GB with blocks_to_swap 16
    plain = RunShape("qwen_image", optimizer="AdamW8bit", network_dim=16)
    fp8 = RunShape("qwen_image", optimizer="AdamW8bit", network_dim=16, fp8=True)
    assert 38 < peak_gib(plain) < 50 and 24 < peak_gib(fp8) < 32
    assert peak_gib(RunShape("qwen_image", fp8=True, blocks_to_swap=16)) < peak_gib(fp8)


def test_a_video_clip_costs_its_latent_frames():
    assert [latent_frames(n) for n in (1, 5, 25, 81)] == [1, 2, 7, 21]
    image = parts(RunShape("wan", "t2v-14B", 832, 480, fp8=True))
    clip = parts(RunShape("wan", "t2v-14B", 832, 480, fp8=True, frames=81))
    assert clip["activations"] == image["activations"] * 21


def test_each_variant_has_its_own_size():
    assert peak_gib(RunShape("wan", "t2v-1.3B")) < peak_gib(RunShape("wan", "t2v-14B")) / 2
    assert peak_gib(RunShape("flux2", "klein-4b")) < peak_gib(RunShape("flux2", "dev")) / 3


def test_the_text_encoder_cache_is_its_own_peak_and_fp8_halves_it():
    cached = parts(RunShape("flux2", "dev", fp8=True))
    assert cached["text_encoders"] == 0.0  # training reads the cache, the encoder is gone
    assert parts(RunShape("flux2", "dev", te_fp8=True))["caching"] < cached["caching"] * 0.6


def test_advice_names_musubis_own_levers():
    text = " ".join(advise(RunShape("qwen_image"), 16.0))
    assert "fp8_base" in text and "blocks_to_swap" in text
    assert "fp8_text_encoder" in " ".join(advise(RunShape("flux2", "dev", fp8=True, blocks_to_swap=29), 24.0))
    assert estimate(RunShape("z_image", fp8=True), 24.0).verdict == "fits"
