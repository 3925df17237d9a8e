"""The project's musubi caches are reused while only training settings change and rebuilt when an
image or caption (or what encodes them) changes: the cache steps' reuse keys say which."""

from __future__ import annotations

import os

import pytest

from lora_workbench.dataset.dataset_toml import dataset_from_toml
from tests.unit.training.musubi_fakes import build, make_project, step, target


@pytest.fixture
def project(tmp_path, monkeypatch):
    return make_project(tmp_path, monkeypatch)


def keys(project, family="wan", files=None, **values) -> tuple[str, str]:
    t = target(project, family, files=files, dataset=dataset_from_toml(project / "dataset.toml", project))
    job = build(t, **values)
    return step(job, "cache_latents").reuse_key, step(job, "cache_text_encoder_outputs").reuse_key


def _touch(path, text: str | None = None, data: bytes | None = None):
    if text is not None:
        path.write_text(text, encoding="utf-8")
    if data is not None:
        path.write_bytes(data)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_training_settings_alone_keep_both_caches(project):
    before = keys(project)
    assert keys(project, learning_rate=3e-4, epochs=9, network_dim=8, optimizer="AdamW8bit") == before
    assert keys(project, batch_size=2, blocks_to_swap=10, seed=7, save_every_n_epochs=2) == before


def test_a_changed_caption_rebuilds_the_caches(project):
    latents, text = keys(project)
    _touch(project / "images" / "2_subject" / "img0.txt", text="subject, a different caption")
    new_latents, new_text = keys(project)
    assert new_text != text and new_latents != latents  # the dataset's content fingerprint covers both


def test_a_changed_image_rebuilds_the_caches(project):
    latents, _ = keys(project)
    image = project / "images" / "2_subject" / "img1.png"
    _touch(image, data=image.read_bytes() + b"\0")
    assert keys(project)[0] != latents


def test_the_encoders_decide_their_own_cache(project):
    latents, text = keys(project)
    other_vae = {
        "vae": "/models/vae/other_vae.safetensors",
        "t5": "/models/text_encoders/models_t5_umt5-xxl-enc-bf16.pth",
    }
    new_latents, same_text = keys(project, files=other_vae)
    assert new_latents != latents and same_text == text
    same_latents, new_text = keys(project, fp8_text_encoder=True)
    assert same_latents == latents and new_text != text
    assert keys(project, width=128, height=128)[0] != latents  # another resolution, other latents


def test_a_dataset_without_a_fingerprint_always_caches(project):
    t = target(project, "wan")
    t.dataset.fingerprint = ""
    job = build(t)
    assert step(job, "cache_latents").reuse_key == "" == step(job, "cache_text_encoder_outputs").reuse_key


@pytest.mark.parametrize("family", ["qwen_image", "z_image"])
def test_each_family_keeps_its_caches_apart(project, family):
    wan = keys(project)
    other = keys(project, family)
    assert wan[0] != other[0] and wan[1] != other[1]
    t = target(project, family)
    markers = {step(build(t), n).reuse_marker for n in ("cache_latents", "cache_text_encoder_outputs")}
    assert all(f"/cache/musubi/{family}/" in m for m in markers) and len(markers) == 2


def test_another_caption_extension_on_the_trainer_always_caches_the_text_encoder_outputs(project):
    """The node's fingerprint hashes the captions with the dataset's own extension: with .caption on
    the trainer, an edited .caption file would leave the key as it was and train on stale outputs."""
    t = target(project, "wan")
    t.dataset.fingerprint = "hashes-the-txt-captions-only"
    job = build(t, caption_extension=".caption")
    assert step(job, "cache_text_encoder_outputs").reuse_key == ""
    assert step(job, "cache_latents").reuse_key  # the images are what the fingerprint covers
    assert step(build(t, caption_extension=".txt"), "cache_text_encoder_outputs").reuse_key
