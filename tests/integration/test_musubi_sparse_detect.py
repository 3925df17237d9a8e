"""Detection on full-size sparse model files built from musubi-tuner's own model classes: every family x
variant x spelling (musubi's names and ComfyUI's repackaged ones) is recognised with musubi's --task /
--model_version, the files musubi cannot load are a sentence, and the VAEs/encoders musubi loads have
the kinds the recipes ask for. Needs musubi-tuner's checkout and Python (MUSUBI_TUNER_PATH,
MUSUBI_PYTHON); the files are sparse (a real header, then truncated to the model's size)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from lora_workbench.modelfiles import components
from lora_workbench.modelfiles.detect import detect_model
from tests.integration import _musubi_models

BUILDER = Path(_musubi_models.__file__)


def _musubi() -> tuple[Path, Path]:
    root, python = os.environ.get("MUSUBI_TUNER_PATH"), os.environ.get("MUSUBI_PYTHON")
    if not root or not python:
        pytest.skip(
            "MUSUBI_TUNER_PATH / MUSUBI_PYTHON are not set: point them at a kohya-ss/musubi-tuner checkout "
            "and its Python (torch and accelerate) to build the models from its classes"
        )
    if not (Path(root) / "src" / "musubi_tuner" / "wan_train_network.py").is_file():
        pytest.skip(f"MUSUBI_TUNER_PATH={root} is not a musubi-tuner checkout (no src/musubi_tuner)")
    return Path(root), Path(python)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    root, python = _musubi()
    out = tmp_path_factory.mktemp("musubi_headers") / "headers.json"
    proc = subprocess.run(
        [str(python), str(BUILDER), str(root), str(out)], capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text(encoding="utf-8"))


def test_every_family_variant_and_spelling_is_detected_from_full_size_files(built, tmp_path):
    rows, wrong = [], []
    for fx in built["models"]:
        path = tmp_path / fx["name"]
        size = _musubi_models.write_sparse(path, fx["tensors"])
        info = detect_model(path)
        got = (info.arch, info.variant, not info.unusable)
        ok = got == (fx["family"], fx["variant"], fx["usable"])
        rows.append(
            (fx["name"], fx["spelling"], size / 2**30, info.arch, info.variant, info.unusable[:70], ok)
        )
        if not ok:
            wrong.append((fx["name"], got, info.how, info.unusable))
        path.unlink()
    print(f"\n{'file':48} {'spelling':22} {'GiB':>6}  family / variant  (unusable)  ok")
    for name, spelling, gib, arch, variant, unusable, ok in rows:
        print(
            f"{name:48} {spelling:22} {gib:6.1f}  {arch} / {variant or '-'}  {unusable or ''}  {'ok' if ok else 'WRONG'}"
        )
    assert not wrong, wrong


def test_kontext_files_need_the_model_type_or_their_name(built, tmp_path):
    fx = next(f for f in built["models"] if f["name"] == "flux1-kontext-dev.safetensors")
    plain = tmp_path / "some_flux_model.safetensors"
    _musubi_models.write_sparse(plain, fx["tensors"])
    assert (detect_model(plain).arch, detect_model(plain).variant) == ("flux", "dev")
    assert detect_model(plain, "flux_kontext").arch == "flux_kontext"


EXPECTED_KINDS = {
    "umt5-xxl-enc-bf16.safetensors": "umt5_xxl",
    "wan_2.1_vae.safetensors": "wan_vae",
    "ae.safetensors": "flux_ae",
    "flux2-vae.safetensors": "flux2_vae",
    "qwen_image_vae_diffusers.safetensors": "qwen_image_vae",
    "hunyuanvideo15_vae_fp16.safetensors": "hv15_vae",
    "hunyuan_video_vae_bf16.safetensors": "hunyuan_video_vae",
    "qwen_2.5_vl_7b.safetensors": "qwen25_vl",
    "qwen_3_4b.safetensors": "qwen3_4b",
    "qwen_3_8b.safetensors": "qwen3_8b",
    "mistral_3_small_flux2_bf16.safetensors": "mistral3",
}


def test_the_encoders_and_vaes_musubi_loads_have_the_recipes_kinds(built, tmp_path):
    for name, shapes in built["components"].items():
        path = tmp_path / name
        _musubi_models.write_sparse(path, {k: ["BF16", s] for k, s in shapes.items()})
        kind = components.file_kind(path)
        print(f"{name:34} {kind}")
        assert components.satisfies(kind, EXPECTED_KINDS[name]), (name, kind)
