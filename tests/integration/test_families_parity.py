"""The unit tier's synthetic headers against the REAL programs, for every family sd-scripts trains:

* sd-scripts' own model classes (built on the meta device by bench/family_models.py) have exactly
  the tensor names and shapes of tests/unit/synthetic_models.py, and our detection reads them right;
* the LoRA keys sd-scripts' networks write are told to the right family, as our synthetic LoRAs are;
* the text encoders and VAEs sd-scripts' loaders build are the kinds the family table expects;
* ComfyUI's model detection finds the same family, and every key of sd-scripts' LoRA (after our
  renames) is in ComfyUI's own LoRA key map for that model: 0 "lora key not loaded".

No weights: everything is built on the meta device, so it runs on any machine in about a minute.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from lora_workbench.modelfiles import components, detect, lora_file
from lora_workbench.modelfiles.safetensors_header import write_safetensors_header_only
from lora_workbench.training import families
from tests.unit import synthetic_models as sm

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PREFIX = {"sd3": "model.diffusion_model.", "anima": "net."}
SYNTHETIC = {
    "flux:dev": sm.flux("dev"),
    "flux:schnell": sm.flux("schnell"),
    "chroma:": sm.chroma(),
    "sd3:medium": sm.sd3_mmdit("medium", ""),
    "sd3:3.5-medium": sm.sd3_mmdit("3.5-medium", ""),
    "sd3:3.5-large": sm.sd3_mmdit("3.5-large", ""),
    "lumina2:": sm.lumina2(),
    "hunyuan_image:2.1": sm.hunyuan_image(),
    "anima:": sm.anima(prefix=""),
}
NOT_IN_FILES = ("pos_embedder.",)  # Anima's rope buffers: rebuilt by the model, never saved


@pytest.fixture(scope="module")
def report(kohya_dir, kohya_python, comfyui_dir, tmp_path_factory) -> dict:
    """What sd-scripts' own classes, loaders and networks build for every family (meta device)."""
    tmp = tmp_path_factory.mktemp("sdscripts-keys")
    env = dict(os.environ, KOHYA_SS_PATH=str(kohya_dir), HF_HOME=str(tmp / "hf"), HF_HUB_OFFLINE="1")
    env["TRANSFORMERS_OFFLINE"] = "1"
    tokenizers = [
        str(kohya_python),
        str(REPO / "bench/offline_tokenizers.py"),
        str(comfyui_dir),
        str(tmp / "tok"),
        str(tmp / "hf"),
    ]
    subprocess.run(tokenizers, check=True, capture_output=True, env=env, timeout=300)
    out = tmp / "report.json"
    run = subprocess.run(
        [str(kohya_python), str(REPO / "bench/family_models.py"), "keys", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    if run.returncode != 0:
        pytest.fail(f"building the models with sd-scripts failed:\n{run.stderr[-4000:]}")
    return json.loads(out.read_text(encoding="utf-8"))


def _family(name: str) -> tuple[str, str]:
    family, variant = name.split(":")
    return family, variant


@pytest.mark.parametrize("name", list(SYNTHETIC))
def test_synthetic_headers_equal_sd_scripts_model_classes(report, name):
    theirs = {k: v for k, v in report["dit"][name].items() if not k.startswith(NOT_IN_FILES)}
    ours = {k: shape for k, (_dtype, shape) in SYNTHETIC[name].items()}
    assert sorted(set(theirs) ^ set(ours)) == []
    assert {k: v for k, v in theirs.items() if ours[k] != v} == {}


@pytest.mark.parametrize("name", list(SYNTHETIC))
def test_detection_reads_the_files_sd_scripts_models_save(report, name, tmp_path):
    family, variant = _family(name)
    prefix = PREFIX.get(family, "")
    tensors = {
        prefix + k: ("BF16", v) for k, v in report["dit"][name].items() if not k.startswith(NOT_IN_FILES)
    }
    if family == "sd3":  # the single-file checkpoint sd3_train_network.py reads carries its VAE
        tensors.update(sm.flux_ae("first_stage_model."))
    path = tmp_path / "m.safetensors"
    write_safetensors_header_only(path, tensors)
    info = detect.detect_model(path)
    print(f"{name}: {info.name} ({info.how})")
    assert (info.arch, info.variant, info.unusable) == (family, variant, "")


@pytest.mark.parametrize("family", ["flux", "chroma", "sd3", "lumina2", "hunyuan_image", "anima"])
def test_the_loras_sd_scripts_writes_are_told_to_their_family(report, family, tmp_path):
    theirs = report["lora"][family]
    path = tmp_path / "l.safetensors"
    write_safetensors_header_only(path, {k: ("F16", v) for k, v in theirs.items()})
    info = lora_file.inspect(path)
    expected = "flux|chroma" if family == "chroma" else family  # no metadata in a bare key set
    assert info.arch == expected, info.arch_source
    model = SYNTHETIC[next(n for n in SYNTHETIC if n.startswith(family + ":"))]
    ours = sm.kohya_lora(model, family)
    assert sorted(set(ours) ^ set(theirs)) == [], "synthetic LoRA keys differ from sd-scripts' network"


@pytest.mark.parametrize("family", ["flux", "chroma", "sd3", "lumina2", "hunyuan_image", "anima"])
def test_sd_scripts_text_encoders_and_vaes_are_the_kinds_the_family_table_expects(report, family):
    for slot in families.get(family).model_files:
        key = f"{family}:{slot.option}"
        if key not in report["components"]:
            assert family == "sd3" and slot.option == "vae"  # SD3's VAE comes with the checkpoint
            continue
        kinds = components.kinds_in(report["components"][key])
        assert list(kinds) == [slot.kind], (key, kinds)


@pytest.fixture(scope="module")
def comfy_view(report, comfy_python, comfyui_dir, tmp_path_factory) -> dict:
    """ComfyUI's detection and LoRA key map for every family's model, built on the meta device."""
    tmp = tmp_path_factory.mktemp("comfy-keys")
    models = {}
    for name, shapes in report["dit"].items():
        family, _variant = _family(name)
        prefix = PREFIX.get(family, "")
        models[name] = {
            "shapes": {prefix + k: v for k, v in shapes.items() if not k.startswith(NOT_IN_FILES)},
            "prefix": prefix,
        }
    src, dst = tmp / "in.json", tmp / "out.json"
    src.write_text(json.dumps(models), encoding="utf-8")
    helper = REPO / "tests/integration/helpers/comfy_family_check.py"
    run = subprocess.run(
        [str(comfy_python), str(helper), str(comfyui_dir), str(src), str(dst)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=str(comfyui_dir),
    )
    if run.returncode != 0:
        pytest.fail(f"ComfyUI's model detection failed:\n{run.stderr[-4000:]}")
    return json.loads(dst.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", list(SYNTHETIC))
def test_comfyui_sees_the_same_family(comfy_view, name):
    family, _variant = _family(name)
    seen = lora_file.model_family(comfy_view[name]["mro"])
    print(f"{name}: ComfyUI {comfy_view[name]['mro'][:1]} -> {seen}")
    if family == "anima":  # ComfyUI 0.3.64 predates Anima: its Cosmos base, which never blocks a LoRA
        assert seen in ("anima", "unknown")
    else:  # ComfyUI's Flux class is FLUX.1 and FLUX.1 Kontext both (it loads Kontext as Flux)
        assert family in seen.split("|") and lora_file.compatible(family, seen)


@pytest.mark.parametrize("family", ["flux", "chroma", "sd3", "lumina2", "hunyuan_image", "anima"])
def test_every_key_of_sd_scripts_lora_is_in_comfyuis_key_map(report, comfy_view, family):
    name = next(n for n in SYNTHETIC if n.startswith(family + ":"))
    if family == "sd3":
        name = "sd3:3.5-large"
    key_map = dict.fromkeys(comfy_view[name]["key_map"])
    keys = list(report["lora"][family])
    renames = lora_file.align_keys(keys, key_map, family)
    modules = {lora_file._split(renames.get(k, k))[0] for k in keys}
    missing = sorted(m for m in modules if m not in key_map)
    print(
        f"{family}: {len(modules)} LoRA modules, {len(renames)} keys renamed, {len(missing)} not in ComfyUI's map"
    )
    assert missing == []
