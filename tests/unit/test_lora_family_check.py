"""musubi-tuner's LoRAs: their family from musubi's metadata or key layout, the ComfyUI model each family
is, LoadTrainedLoRA refusing one for another family or one ComfyUI would apply to nothing or only in part
(musubi's own layout of a family ComfyUI needs converted), and the table of what ComfyUI loads.

Key layouts are musubi's own, as its network modules save them on its DiTs (widths as in the real
models; two blocks each) — tests/integration/test_musubi_lora_keys.py checks the full ones."""

from __future__ import annotations

import json

import pytest

from lora_workbench.errors import ValidationError, WorkbenchError
from lora_workbench.modelfiles import lora_file, lora_keys
from lora_workbench.modelfiles.safetensors_header import write_safetensors_header_only
from lora_workbench.training.backends.musubi import outputs
from tests.unit.modelfiles.test_load_trained_lora import FakePatcher, calls, node_cls  # noqa: F401

MUSUBI_FAMILIES = ("wan", "qwen_image", "z_image", "flux2", "flux_kontext", "hunyuan_video_1_5", "framepack")

# family -> (module name pattern with {i}, input width, output width) per LoRA module of one block
LAYOUTS = {
    "wan": [(f"blocks_{{i}}_{a}_attn_{p}", 5120, 5120) for a in ("self", "cross") for p in "qkvo"],
    "qwen_image": [
        ("transformer_blocks_{i}_attn_to_q", 3072, 3072),
        ("transformer_blocks_{i}_attn_add_q_proj", 3072, 3072),
        ("transformer_blocks_{i}_img_mlp_net_0_proj", 3072, 12288),
        ("transformer_blocks_{i}_txt_mlp_net_2", 12288, 3072),
    ],
    "z_image": [(f"layers_{{i}}_attention_to_{p}", 3840, 3840) for p in "qkv"]
    + [("layers_{i}_attention_to_out_0", 3840, 3840), ("layers_{i}_feed_forward_w1", 3840, 10240)],
    "z_image_comfy": [
        ("layers_{i}_attention_qkv", 3840, 11520),
        ("layers_{i}_attention_out", 3840, 3840),
        ("layers_{i}_feed_forward_w1", 3840, 10240),
    ],
    "flux2": [  # klein-4b: FLUX.1's width, but a 3x SwiGLU mlp
        ("double_blocks_{i}_img_attn_qkv", 3072, 9216),
        ("double_blocks_{i}_img_mlp_0", 3072, 18432),
        ("double_blocks_{i}_img_mlp_2", 9216, 3072),
        ("single_blocks_{i}_linear1", 3072, 27648),
    ],
    "flux_kontext": [
        ("double_blocks_{i}_img_attn_qkv", 3072, 9216),
        ("double_blocks_{i}_img_mlp_0", 3072, 12288),
        ("double_blocks_{i}_img_mlp_2", 12288, 3072),
        ("single_blocks_{i}_linear1", 3072, 21504),
    ],
    "hunyuan_video_1_5": [(f"double_blocks_{{i}}_img_attn_{p}", 2048, 2048) for p in "qkv"]
    + [("double_blocks_{i}_img_mlp_fc1", 2048, 8192), ("double_blocks_{i}_img_mod_linear", 2048, 12288)],
    "hunyuan_video_1_5_comfy": [
        ("double_blocks_{i}_img_attn_qkv", 2048, 6144),
        ("double_blocks_{i}_img_mlp_0", 2048, 8192),
        ("double_blocks_{i}_img_mod_lin", 2048, 12288),
    ],
    "framepack": [
        ("transformer_blocks_{i}_attn_to_q", 3072, 3072),
        ("transformer_blocks_{i}_attn_add_q_proj", 3072, 3072),
        ("single_transformer_blocks_{i}_attn_to_q", 3072, 3072),
        ("single_transformer_blocks_{i}_proj_mlp", 3072, 12288),
    ],
}
BASE_VERSIONS = {  # what musubi's trainers write as ss_base_model_version (architecture_full_name)
    "wan": "wan",
    "qwen_image": "qwen_image_edit",
    "z_image": "z_image",
    "flux2": "flux_2_klein_4b",
    "flux_kontext": "flux_kontext",
    "hunyuan_video_1_5": "hunyuan_video_1_5",
    "framepack": "framepack",
}


def modules(layout: str, blocks: int = 2) -> list[str]:
    return [f"lora_unet_{m.format(i=i)}" for i in range(blocks) for m, _i, _o in LAYOUTS[layout]]


def musubi_keys(layout: str, rank: int = 4) -> dict:
    keys = {}
    for i in range(2):
        for pattern, width_in, width_out in LAYOUTS[layout]:
            name = f"lora_unet_{pattern.format(i=i)}"
            keys[f"{name}.lora_down.weight"] = ("F16", [rank, width_in])
            keys[f"{name}.lora_up.weight"] = ("F16", [width_out, rank])
            keys[f"{name}.alpha"] = ("F16", [])
    return keys


def write(path, layout: str, metadata: dict | None = None):
    write_safetensors_header_only(path, musubi_keys(layout), metadata)
    return path


def comfy_map(layout: str) -> dict:
    """ComfyUI's key map for a model whose module names are `layout`'s (lora_unet_<path> -> weight)."""
    return {m: f"diffusion_model.{m[len('lora_unet_') :]}.weight" for m in modules(layout)}


# --------------------------------------------------------------------------- which family
@pytest.mark.parametrize("family", MUSUBI_FAMILIES)
def test_each_musubi_lora_is_told_by_the_metadata_musubi_writes(tmp_path, family):
    path = write(tmp_path / "l.safetensors", "wan", {"ss_base_model_version": BASE_VERSIONS[family]})
    info = lora_file.inspect(path)
    assert info.arch == family and "ss_base_model_version" in info.arch_source


@pytest.mark.parametrize(
    "layout,family",
    [
        ("wan", "wan"),
        ("qwen_image", "qwen_image"),
        ("z_image", "z_image"),
        ("z_image_comfy", "z_image"),
        ("flux2", "flux2"),
        ("hunyuan_video_1_5", "hunyuan_video_1_5"),
        ("hunyuan_video_1_5_comfy", "hunyuan_video_1_5"),
        ("framepack", "framepack"),
    ],
)
def test_each_musubi_layout_is_told_from_its_keys_without_metadata(tmp_path, layout, family):
    info = lora_file.inspect(write(tmp_path / "l.safetensors", layout))
    assert info.arch == family, info.arch_source


def test_a_kontext_lora_without_metadata_is_flux1_and_musubis_modelspec_spelling_names_kontext(tmp_path):
    # Kontext's keys are FLUX.1's; musubi (which trains no FLUX.1 dev) writes "Flux.1-dev", sd-scripts'
    # FLUX.1 writes "flux-1-dev": the spelling tells them apart
    info = lora_file.inspect(write(tmp_path / "a.safetensors", "flux_kontext"))
    assert info.arch in ("flux", "flux|chroma")
    marked = write(tmp_path / "b.safetensors", "flux_kontext", {"modelspec.architecture": "Flux.1-dev/lora"})
    assert lora_file.inspect(marked).arch == "flux_kontext"


def test_modelspec_names_a_musubi_family_when_the_base_version_is_missing(tmp_path):
    path = write(tmp_path / "l.safetensors", "wan", {"modelspec.architecture": "Z-Image/lora"})
    assert lora_file.inspect(path).arch == "z_image"


def test_sd_scripts_families_keep_their_rules(tmp_path):
    from tests.unit import synthetic_models as sm

    for family, model in (("flux", sm.flux("dev")), ("lumina2", sm.lumina2()), ("anima", sm.anima(""))):
        path = tmp_path / f"{family}.safetensors"
        write_safetensors_header_only(path, sm.kohya_lora(model, family))
        assert lora_file.inspect(path).arch == family


# --------------------------------------------------------------------------- which model
@pytest.mark.parametrize(
    "mro,family",
    [
        (("WAN22_T2V", "WAN21_T2V", "BASE"), "wan"),
        (("WAN21_I2V", "WAN21_T2V", "BASE"), "wan"),
        (("QwenImage", "BASE"), "qwen_image"),
        (("ZImage", "Lumina2", "BASE"), "z_image"),
        (("Lumina2", "BASE"), "lumina2"),
        (("Flux2", "Flux", "BASE"), "flux2"),
        (("Flux", "BASE"), "flux|flux_kontext"),
        (("HunyuanVideo15", "HunyuanVideo", "BASE"), "hunyuan_video_1_5"),
        (("HunyuanVideo", "BASE"), "unknown"),
    ],
)
def test_comfyuis_model_config_class_names_the_family(mro, family):
    assert lora_file.model_family(mro) == family


def test_a_kontext_lora_fits_a_flux_model_but_not_chroma_or_flux2(tmp_path):
    info = lora_file.inspect(
        write(tmp_path / "k.safetensors", "flux_kontext", {"ss_base_model_version": "flux_kontext"})
    )
    lora_file.check_compatible(info, lora_file.model_family(("Flux", "BASE")))
    for mro in (("Chroma", "BASE"), ("Flux2", "Flux", "BASE")):
        with pytest.raises(ValidationError, match=r"k\.safetensors was trained for FLUX\.1 Kontext"):
            lora_file.check_compatible(info, lora_file.model_family(mro))


def test_a_wan_lora_on_a_flux_model_names_both_families(tmp_path):
    info = lora_file.inspect(write(tmp_path / "w.safetensors", "wan"))
    with pytest.raises(ValidationError, match=r"trained for Wan 2\.1/2\.2 .*is FLUX\.1 or FLUX\.1 Kontext\."):
        lora_file.check_compatible(info, lora_file.model_family(("Flux", "BASE")))


# --------------------------------------------------------------------------- LoadTrainedLoRA
def model_with(config: str, layout: str) -> FakePatcher:
    model = FakePatcher(config)
    model.model.lora_keys = comfy_map(layout)
    return model


def test_node_refuses_a_qwen_image_lora_on_a_wan_model_before_loading(comfy, calls, node_cls):  # noqa: F811
    write(comfy.base / "models/loras/q.safetensors", "qwen_image", {"ss_base_model_version": "qwen_image"})
    with pytest.raises(ValidationError, match=r"q\.safetensors was trained for Qwen-Image .*Wan 2\.1/2\.2"):
        node_cls().load(model_with("WAN21_T2V", "wan"), "q.safetensors", 0, 1.0, 0.0)
    assert calls["load"] == []


def test_node_loads_a_wan_lora_as_trained_on_a_wan_model(comfy, calls, node_cls):  # noqa: F811
    path = write(comfy.base / "models/loras/w.safetensors", "wan", {"ss_base_model_version": "wan"})
    node_cls().load(model_with("WAN22_T2V", "wan"), "w.safetensors", 0, 1.0, 0.0)
    assert calls["apply"][-1]["keys"] == sorted(musubi_keys("wan")) and path.exists()


def test_node_refuses_a_z_image_lora_in_musubis_layout_naming_the_converter(comfy, calls, node_cls):  # noqa: F811
    write(comfy.base / "models/loras/z.safetensors", "z_image", {"ss_base_model_version": "z_image"})
    # ComfyUI's Z-Image has a fused attention.qkv: of musubi's names only feed_forward maps
    with pytest.raises(ValidationError) as err:
        node_cls().load(model_with("ZImage", "z_image_comfy"), "z.safetensors", 0, 1.0, 0.0)
    message = str(err.value)
    assert "ComfyUI places only 2 of the 10 modules of the LoRA z.safetensors" in message
    assert "convert_z_image_lora_to_comfy.py" in message and "z_comfy.safetensors" in message
    assert calls["apply"] == []


def test_node_loads_the_converted_z_image_lora(comfy, calls, node_cls):  # noqa: F811
    write(
        comfy.base / "models/loras/z_comfy.safetensors", "z_image_comfy", {"ss_base_model_version": "z_image"}
    )
    node_cls().load(model_with("ZImage", "z_image_comfy"), "z_comfy.safetensors", 0, 1.0, 0.0)
    assert calls["apply"][-1]["keys"] == sorted(musubi_keys("z_image_comfy"))


def test_node_refuses_a_lora_comfyui_would_apply_to_nothing(comfy, calls, node_cls):  # noqa: F811
    # FramePack has no ComfyUI model: on a HunyuanVideo model none of its diffusers names map
    write(comfy.base / "models/loras/fp.safetensors", "framepack")
    with pytest.raises(
        ValidationError,
        match=r"ComfyUI places none of the 8 modules of the LoRA fp\.safetensors.*FramePackWrapper",
    ):
        node_cls().load(model_with("HunyuanVideo", "hunyuan_video_1_5_comfy"), "fp.safetensors", 0, 1.0, 0.0)


def test_node_lets_an_sd_scripts_lora_load_in_part_as_comfyui_does(comfy, calls, node_cls):  # noqa: F811
    from tests.unit import synthetic_models as sm

    keys = sm.kohya_lora(sm.flux("dev"), "flux")
    write_safetensors_header_only(comfy.base / "models/loras/f.safetensors", keys)
    model = FakePatcher("Flux")
    some = sorted({lora_keys.module_of(k) for k in keys})[:3]
    model.model.lora_keys = {m: "w" for m in some}
    node_cls().load(model, "f.safetensors", 0, 1.0, 0.0)
    assert calls["apply"][-1]["keys"] == sorted(keys)


def test_key_modules_cover_kohya_diffusers_and_lycoris_tails():
    assert lora_keys.module_of("lora_unet_a_b.lora_down.weight") == "lora_unet_a_b"
    assert lora_keys.module_of("diffusion_model.a.b.lora_A.weight") == "diffusion_model.a.b"
    assert lora_keys.module_of("lora_unet_a.alpha") == "lora_unet_a"
    assert lora_keys.module_of("lora_unet_a.hada_w1_a") == "lora_unet_a"


# --------------------------------------------------------------------------- what ComfyUI loads
def test_every_musubi_family_has_a_comfyui_output_rule_and_wan_loads_as_trained():
    assert set(outputs.OUTPUTS) == set(MUSUBI_FAMILIES)
    assert outputs.output_for("wan").layout == outputs.AS_TRAINED
    converted = {f for f, o in outputs.OUTPUTS.items() if o.converts}
    assert converted == {"z_image", "hunyuan_video_1_5"}
    for family, out in outputs.OUTPUTS.items():
        assert out.reason.endswith((".", ")")), family
        assert bool(out.script) == out.converts and (
            not out.script or out.script.startswith("src/musubi_tuner/")
        )


def test_the_convert_step_runs_musubis_converter_on_the_trained_file():
    args = outputs.convert_args("hunyuan_video_1_5", "/o/a b.safetensors", "/o/a b_comfy.safetensors")
    assert args == (outputs.HV15_TO_COMFY, "/o/a b.safetensors", "/o/a b_comfy.safetensors")
    assert outputs.convert_args("wan", "/o/a.safetensors", "/o/b.safetensors") == ()
    assert outputs.comfy_file_name("face", "z_image") == "face_comfy.safetensors"
    assert outputs.comfy_file_name("face", "qwen_image") == "face.safetensors"


def test_an_unknown_family_has_no_output_rule_and_says_which_exist():
    with pytest.raises(ValidationError, match=r"No ComfyUI output rule for model family 'sdxl'.*wan"):
        outputs.output_for("sdxl")
    assert outputs.convert_hint("sdxl", "/x.safetensors") == ""


def test_an_epoch_of_a_converted_run_is_its_converted_file_else_the_trainers_own(tmp_path):
    final = write(tmp_path / "face_comfy.safetensors", "z_image_comfy")
    raw2 = write(tmp_path / "face-000002.safetensors", "z_image")
    assert lora_file.epoch_file(str(final), 2, [str(raw2)]) == str(raw2)
    converted2 = write(tmp_path / "face-000002_comfy.safetensors", "z_image_comfy")
    assert lora_file.epoch_file(str(final), 2, [str(raw2)]) == str(converted2)
    with pytest.raises(ValidationError, match=r"No epoch 3 file for face_comfy\.safetensors"):
        lora_file.epoch_file(str(final), 3, [str(raw2)])


def test_the_hint_for_a_raw_epoch_file_names_the_converted_file_the_node_then_finds(tmp_path):
    hint = outputs.convert_hint("z_image", str(tmp_path / "face-000002.safetensors"))
    assert outputs.Z_IMAGE_TO_COMFY in hint and "load face-000002_comfy.safetensors" in hint


# --------------------------------------------------------------------------- hostile headers
_DOWN = "lora_unet_blocks_0_self_attn_q.lora_down.weight"


def _tensor(shape) -> dict:
    return {"dtype": "F32", "shape": shape, "data_offsets": [0, 4]}


HOSTILE_HEADERS = {
    "metadata that is a list": {"__metadata__": ["wan"], _DOWN: _tensor([4, 8])},
    "metadata that is text": {"__metadata__": "wan", _DOWN: _tensor([4, 8])},
    "a metadata value that is a number": {
        "__metadata__": {"ss_base_model_version": 7},
        _DOWN: _tensor([4, 8]),
    },
    "a shape that is text": {_DOWN: _tensor("abcd")},
    "a shape that is a number": {_DOWN: _tensor(7)},
    "a shape of texts": {_DOWN: _tensor(["4", "x"])},
    "a shape holding an object": {
        "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight": _tensor([4, {}]),
        "lora_unet_double_blocks_0_img_mlp_2.lora_down.weight": _tensor([4, 1]),
    },
    "a shape of booleans": {_DOWN: _tensor([True, False])},
    "no shape": {_DOWN: {"dtype": "F32", "data_offsets": [0, 4]}},
    "a z_image width as text": {"lora_unet_layers_0_attention_to_q.lora_down.weight": _tensor([4, "3840"])},
}


def _raw_lora(path, header: dict | str) -> None:
    """A whole file (its size what the header's offsets say) with exactly this header."""
    import struct

    raw = (header if isinstance(header, str) else json.dumps(header)).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 4)


@pytest.mark.parametrize("case", HOSTILE_HEADERS)
def test_node_refuses_a_lora_whose_header_is_not_safetensors_in_one_sentence(comfy, calls, node_cls, case):  # noqa: F811
    _raw_lora(comfy.base / "models/loras/h.safetensors", HOSTILE_HEADERS[case])
    with pytest.raises(WorkbenchError, match=r"h\.safetensors is not a safetensors file \(.+\)"):
        node_cls().load(model_with("WAN21_T2V", "wan"), "h.safetensors", 0, 1.0, 0.0)
    assert calls["load"] == []


@pytest.mark.parametrize(
    "value",
    ["[" * 100_000 + "]" * 100_000, "1" * 5000, '{"a": ' + "9" * 5000 + "}"],
    ids=["deep", "digits", "in"],
)
def test_metadata_json_nested_without_end_or_with_huge_numbers_names_no_trigger_words(tmp_path, value):
    header = {"__metadata__": {"ss_datasets": value, "ss_tag_frequency": value}, _DOWN: _tensor([4, 8])}
    _raw_lora(tmp_path / "m.safetensors", header)
    assert lora_file.inspect(tmp_path / "m.safetensors").trigger_words == []
