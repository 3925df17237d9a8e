"""musubi-tuner's LoRA keys against ComfyUI's own LoRA loader, family by family.

In musubi's python: musubi's DiT for each family (full size, on the meta device), its LoRA network from
musubi's own network module (lora_wan, lora_qwen_image, ...), saved as its trainer saves it; then the
convert step backends/musubi/outputs.py gives the family, run for real. In ComfyUI's python: ComfyUI's
model detection on the DiT's weight names, the model built on the meta device, and the LoRA loaded the
way its loader does (comfy.lora_convert, then comfy.lora.load_lora on model_lora_keys_unet's map),
counting the keys it logs as not loaded. Needs COMFYUI_PATH (+ COMFYUI_PYTHON) and MUSUBI_TUNER_PATH
(+ MUSUBI_PYTHON); skips with the reason otherwise. Run with -s for the per-family table.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lora_workbench.errors import ValidationError
from lora_workbench.modelfiles import lora_file
from lora_workbench.training.backends.musubi import outputs
from lora_workbench.training.backends.musubi.install import find_musubi

HELPERS = Path(__file__).parent / "helpers"

# name -> (family, variant): every DiT shape musubi trains for the seven families
CASES = {
    "wan t2v-1.3B": ("wan", "t2v-1.3B"),
    "wan t2v-14B": ("wan", "t2v-14B"),
    "wan i2v-14B": ("wan", "i2v-14B"),
    "wan t2v-A14B": ("wan", "t2v-A14B"),
    "wan i2v-A14B": ("wan", "i2v-A14B"),
    "qwen_image original": ("qwen_image", "original"),
    "qwen_image edit-2511": ("qwen_image", "edit-2511"),
    "z_image": ("z_image", ""),
    "flux_kontext": ("flux_kontext", ""),
    "flux2 dev": ("flux2", "dev"),
    "flux2 klein-4b": ("flux2", "klein-4b"),
    "flux2 klein-9b": ("flux2", "klein-9b"),
    "hunyuan_video_1_5 t2v": ("hunyuan_video_1_5", "t2v"),
    "hunyuan_video_1_5 i2v": ("hunyuan_video_1_5", "i2v"),
    "framepack": ("framepack", ""),
}
# ComfyUI a125cd84 predates Z-Image and HunyuanVideo 1.5, but builds their module names from their
# weights under an older class (Lumina2's Next-DiT, HunyuanVideo's double blocks): the converted keys are
# checked on that model. FLUX.2 and FramePack it cannot build at all.
STAND_INS = {"z_image": "Lumina2", "hunyuan_video_1_5": "HunyuanImage21Refiner"}


@pytest.fixture(scope="module")
def musubi():
    try:
        return find_musubi()
    except ValidationError as exc:
        pytest.skip(str(exc))


def run(argv: list[str], cwd: Path | None = None) -> None:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def results(musubi, comfyui_dir, comfy_python, tmp_path_factory):
    """{case: (musubi side, ComfyUI side for the file ComfyUI loads, ComfyUI side for the raw file)}."""
    work = tmp_path_factory.mktemp("musubi_lora_keys")
    (work / "cases.json").write_text(
        json.dumps({n: {"family": f, "variant": v} for n, (f, v) in CASES.items()})
    )
    run(
        [str(musubi.python), str(HELPERS / "musubi_lora_keys.py"), str(musubi.root), str(work / "cases.json")]
        + [str(work / "musubi.json"), str(work)]
    )
    built = json.loads((work / "musubi.json").read_text())
    loads: dict[str, dict] = {}
    for name, (family, _variant) in CASES.items():
        raw = built[name]["lora"]
        loads[name] = {"model": built[name]["model"], "lora": raw}
        if outputs.output_for(family).converts:
            converted = str(Path(raw).with_name(outputs.comfy_file_name(Path(raw).stem, family)))
            run([str(musubi.python), *outputs.convert_args(family, raw, converted)], cwd=musubi.root)
            loads[name + " (as trained)"] = dict(loads[name])
            loads[name]["lora"] = converted
    (work / "comfy_in.json").write_text(json.dumps(loads))
    run(
        [str(comfy_python), str(HELPERS / "comfy_lora_keys.py"), str(comfyui_dir)]
        + [str(work / x) for x in ("comfy_in.json", "comfy.json")]
    )
    comfy = json.loads((work / "comfy.json").read_text())
    table = []
    for name, side in comfy.items():
        shown = side["config"] or f"none ({side.get('error', 'not detected')[:60]})"
        table.append(
            f"{name:38} {shown:40} keys {side['keys']:5} map {side['loaded']:5} not {len(side['not_loaded']):5}"
        )
    print("\nmusubi LoRA keys on ComfyUI a125cd84 (model config, LoRA keys, mapped, not mapped)")
    print("\n".join(table))
    return {n: (built[n], comfy[n], comfy.get(n + " (as trained)")) for n in CASES}, loads


def comfy_knows(family: str, side: dict) -> bool:
    return family in lora_file.model_family(side["mro"]).split("|")


@pytest.mark.parametrize("name", list(CASES))
def test_every_key_of_the_lora_comfyui_loads_maps_where_comfyui_builds_the_family(results, name):
    family = CASES[name][0]
    musubi_side, comfy, _raw = results[0][name]
    assert musubi_side["lora_keys"] > 0
    if not comfy_knows(family, comfy) and STAND_INS.get(family) != comfy["config"]:
        pytest.skip(f"ComfyUI a125cd84 does not know {family} (detected: {comfy['config'] or 'nothing'})")
    assert comfy["keys"] > 0 and comfy["not_loaded"] == [], comfy["not_loaded"][:5]


@pytest.mark.parametrize("name", [n for n, (f, _v) in CASES.items() if outputs.output_for(f).converts])
def test_a_converted_familys_raw_layout_would_load_only_in_part(results, name):
    _musubi, _comfy, raw = results[0][name]
    assert raw is not None and 0 < len(raw["not_loaded"]) < raw["keys"]


@pytest.mark.parametrize("name", list(CASES))
def test_the_lora_comfyui_loads_is_told_as_its_family_from_full_size_keys(results, name):
    family = CASES[name][0]
    if family == "flux_kontext":  # FLUX.1's layout: only musubi's metadata says Kontext
        family = "flux"
    info = lora_file.inspect(results[1][name]["lora"])
    assert family in info.arch.split("|"), info.arch_source


@pytest.mark.parametrize("name", list(CASES))
def test_the_packs_count_of_unplaced_modules_is_comfyuis(results, name):
    from lora_workbench.modelfiles import lora_keys

    for side in results[0][name][1:]:
        if side is not None and side["keys"]:
            logged = sorted({lora_keys.module_of(k) for k in side["not_loaded"]})
            assert side["pack_unmapped_modules"] == logged
