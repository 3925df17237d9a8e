"""LoadTrainedLoRA: compatibility check, model-only use, reload on file change, strength 0, epochs."""

from __future__ import annotations

import os

import pytest

from lora_workbench.datatypes import TrainedLora
from lora_workbench.errors import ValidationError
from lora_workbench.modelfiles.safetensors_header import read_header, write_safetensors_header_only

# Synthetic kohya key sets: the cross-attention width (768 vs 2048) tells SD1.5 from SDXL.
SD15_KEYS = {
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": (
        "F16",
        [4, 768],
    ),
    "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": ("F16", [320, 4]),
    "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": ("F16", [4, 768]),
    "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": ("F16", [768, 4]),
}
SDXL_KEYS = {
    "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight": ("F16", [8, 2048]),
    "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": ("F16", [8, 768]),
    "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": ("F16", [8, 1280]),
}


class FakePatcher:
    """Stands in for ComfyUI's ModelPatcher / CLIP: only the attributes the node reads."""

    def __init__(self, config_name: str | None = None, latent: str | None = None):
        self.model = type("BaseModel", (), {})()
        if config_name:
            self.model.model_config = type(config_name, (), {})()
        if latent:
            self.model.latent_format = type(latent, (), {})()


@pytest.fixture
def calls(comfy, monkeypatch):
    """Record ComfyUI's load_torch_file / load_lora_for_models calls (the stubs have none)."""
    rec = {"load": [], "apply": []}

    def load_torch_file(path, safe_load=False):
        rec["load"].append(path)
        return {k: f"tensor:{k}" for k in read_header(path).keys()}

    def load_lora_for_models(model, clip, sd, sm, sc):
        rec["apply"].append({"model": model, "clip": clip, "keys": sorted(sd), "sm": sm, "sc": sc})
        return ("patched-model" if model is not None else None, "patched-clip" if clip is not None else None)

    monkeypatch.setattr(comfy.modules["comfy.utils"], "load_torch_file", load_torch_file, raising=False)
    monkeypatch.setattr(
        comfy.modules["comfy.sd"], "load_lora_for_models", load_lora_for_models, raising=False
    )
    return rec


@pytest.fixture
def node_cls(pack):
    return pack.nodes.load_trained_lora.LoadTrainedLoRA


def lora_in(comfy, name, keys, metadata=None):
    path = comfy.base / "models/loras" / name
    write_safetensors_header_only(path, keys, metadata)
    return path


def test_node_is_registered_with_tooltips(pack, node_cls):
    assert pack.NODE_CLASS_MAPPINGS["LoadTrainedLoRA"] is node_cls
    spec = node_cls.INPUT_TYPES()
    for section in ("required", "optional"):
        for name, (_kind, opts) in spec[section].items():
            assert opts.get("tooltip"), name
    assert spec["required"]["lora_name"][0][0] == "(from trained_lora)"
    assert node_cls.RETURN_TYPES == ("MODEL", "CLIP", "STRING")


def test_sd15_lora_on_sdxl_model_is_refused_before_loading(comfy, calls, node_cls):
    lora_in(comfy, "face_sd15.safetensors", SD15_KEYS)
    with pytest.raises(ValidationError, match=r"face_sd15\.safetensors.*SD 1\.x.*SDXL"):
        node_cls().load(FakePatcher("SDXL"), "face_sd15.safetensors", 0, 1.0, 1.0, clip=FakePatcher())
    assert calls["load"] == []


def test_sdxl_lora_on_sd15_model_is_refused(comfy, calls, node_cls):
    lora_in(comfy, "style_xl.safetensors", SDXL_KEYS)
    with pytest.raises(ValidationError, match=r"SDXL.*SD 1\.x"):
        node_cls().load(FakePatcher("SD15"), "style_xl.safetensors", 0, 1.0, 1.0, clip=FakePatcher())


def test_family_falls_back_to_the_latent_format_and_never_blocks_unknown_models(comfy, calls, node_cls):
    lora_in(comfy, "a.safetensors", SD15_KEYS)
    with pytest.raises(ValidationError):
        node_cls().load(FakePatcher(latent="SDXL"), "a.safetensors", 0, 1.0, 1.0, clip=FakePatcher())
    model, _clip, _t = node_cls().load(object(), "a.safetensors", 0, 1.0, 1.0, clip=FakePatcher())
    assert model == "patched-model"


def test_model_only_use_drops_text_encoder_keys(comfy, calls, node_cls):
    lora_in(comfy, "a.safetensors", SD15_KEYS)
    model = FakePatcher("SD15")
    out_model, out_clip, _ = node_cls().load(model, "a.safetensors", 0, 0.8, 1.0, clip=None)
    assert out_model == "patched-model" and out_clip is None
    applied = calls["apply"][-1]
    assert applied["clip"] is None and not any(k.startswith("lora_te") for k in applied["keys"])
    clip = FakePatcher()
    _m, out_clip, _ = node_cls().load(model, "a.safetensors", 0, 0.8, 0.0, clip=clip)
    assert out_clip is clip and not any(k.startswith("lora_te") for k in calls["apply"][-1]["keys"])


def test_clip_and_model_both_get_the_lora(comfy, calls, node_cls):
    lora_in(comfy, "a.safetensors", SD15_KEYS)
    m, c, _ = node_cls().load(FakePatcher("SD15"), "a.safetensors", 0, 1.0, 0.5, clip=FakePatcher())
    assert (m, c) == ("patched-model", "patched-clip")
    assert calls["apply"][-1]["keys"] == sorted(SD15_KEYS) and calls["apply"][-1]["sc"] == 0.5


def test_strength_zero_returns_the_inputs_untouched(comfy, calls, node_cls):
    lora_in(comfy, "a.safetensors", SD15_KEYS, {"ss_output_name": "a"})
    model, clip = FakePatcher("SDXL"), FakePatcher()  # even a mismatch is harmless at strength 0
    out = node_cls().load(model, "a.safetensors", 0, 0.0, 0.0, clip=clip)
    assert out[0] is model and out[1] is clip and out[2] == "a"
    assert calls["load"] == [] and calls["apply"] == []


def test_a_rewritten_file_is_reloaded_and_changes_is_changed(comfy, calls, node_cls):
    path = lora_in(comfy, "a.safetensors", SD15_KEYS)
    node = node_cls()
    key1 = node_cls.IS_CHANGED(lora_name="a.safetensors", epoch=0)
    node.load(FakePatcher("SD15"), "a.safetensors", 0, 1.0, 1.0, clip=FakePatcher())
    node.load(FakePatcher("SD15"), "a.safetensors", 0, 1.0, 1.0, clip=FakePatcher())
    assert len(calls["load"]) == 1  # cached: same path, mtime and size
    assert node_cls.IS_CHANGED(lora_name="a.safetensors", epoch=0) == key1

    bigger = dict(SD15_KEYS, **{"lora_unet_extra.lora_down.weight": ("F16", [4, 768])})
    write_safetensors_header_only(path, bigger)  # same name, new content (size changes)
    assert node_cls.IS_CHANGED(lora_name="a.safetensors", epoch=0) != key1
    node.load(FakePatcher("SD15"), "a.safetensors", 0, 1.0, 1.0, clip=FakePatcher())
    assert len(calls["load"]) == 2 and "lora_unet_extra.lora_down.weight" in calls["apply"][-1]["keys"]

    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # same size, newer mtime
    key3 = node_cls.IS_CHANGED(lora_name="a.safetensors", epoch=0)
    node.load(FakePatcher("SD15"), "a.safetensors", 0, 1.0, 1.0, clip=FakePatcher())
    assert len(calls["load"]) == 3 and key3 != key1


def test_linked_trained_lora_picks_its_epoch_and_trigger_words(comfy, calls, node_cls, tmp_path):
    out = tmp_path / "project/output"
    out.mkdir(parents=True)
    final, e1 = out / "me.safetensors", out / "me-000001.safetensors"
    write_safetensors_header_only(final, SD15_KEYS, {"ss_output_name": "me"})
    write_safetensors_header_only(e1, SD15_KEYS)
    trained = TrainedLora(path=str(final), epoch_paths=[str(e1)], trigger_words=["ohwx", "sks dog"])
    node = node_cls()
    _m, _c, words = node.load(
        FakePatcher("SD15"), "(from trained_lora)", 0, 1.0, 1.0, clip=FakePatcher(), trained_lora=trained
    )
    assert words == "ohwx, sks dog" and calls["load"][-1] == str(final)
    node.load(
        FakePatcher("SD15"), "(from trained_lora)", 1, 1.0, 1.0, clip=FakePatcher(), trained_lora=trained
    )
    assert calls["load"][-1] == str(e1)
    assert node_cls.IS_CHANGED(lora_name="(from trained_lora)", epoch=1) == node_cls.IS_CHANGED(
        lora_name="(from trained_lora)", epoch=1
    )


def test_trigger_words_fall_back_to_the_file_metadata(comfy, calls, node_cls):
    lora_in(comfy, "a.safetensors", SD15_KEYS, {"ss_tag_frequency": '{"5_zkz style": {"x": 1}}'})
    *_, words = node_cls().load(FakePatcher("SD15"), "a.safetensors", 0, 1.0, 1.0, clip=FakePatcher())
    assert words == "zkz style"


def test_missing_link_or_file_is_a_readable_error(comfy, calls, node_cls):
    with pytest.raises(ValidationError, match="nothing is connected to trained_lora"):
        node_cls().load(FakePatcher("SD15"), "(from trained_lora)", 0, 1.0, 1.0)
    with pytest.raises(ValidationError, match="gone.safetensors is not in ComfyUI's loras"):
        node_cls().load(FakePatcher("SD15"), "gone.safetensors", 0, 1.0, 1.0)


def test_a_cut_off_lora_file_is_refused_before_comfyui_loads_it(comfy, calls, node_cls):
    path = lora_in(comfy, "cut.safetensors", SD15_KEYS)
    os.truncate(path, path.stat().st_size // 2)  # the disk filled while it was written
    with pytest.raises(ValidationError, match=r"cut\.safetensors is not whole \(it holds \d+ bytes where"):
        node_cls().load(FakePatcher("SD15"), "cut.safetensors", 0, 1.0, 1.0, clip=FakePatcher())
    assert calls["load"] == []


# --------------------------------------------------------------------------- the other families
def _family_lora(comfy, name, family):
    from tests.unit import synthetic_models as sm

    model = {"flux": sm.flux("dev"), "hunyuan_image": sm.hunyuan_image(), "lumina2": sm.lumina2()}[family]
    return lora_in(comfy, name, sm.kohya_lora(model, family))


def test_a_flux_lora_on_an_sdxl_model_is_refused_in_one_sentence(comfy, calls, node_cls):
    _family_lora(comfy, "flux_style.safetensors", "flux")
    with pytest.raises(
        ValidationError, match=r"flux_style\.safetensors was trained for FLUX\.1 .*is SDXL\. Load a FLUX\.1"
    ):
        node_cls().load(FakePatcher("SDXL"), "flux_style.safetensors", 0, 1.0, 1.0, clip=FakePatcher())
    assert calls["load"] == []  # refused from the header, before reading the weights


def test_a_hunyuan_image_lora_gets_comfyuis_layer_names(comfy, calls, node_cls):
    from tests.unit import synthetic_models as sm

    _family_lora(comfy, "hy.safetensors", "hunyuan_image")
    model = FakePatcher("HunyuanImage21")
    comfy_names = sm.hunyuan_image(names="comfy")
    model.model.lora_keys = {
        "lora_unet_" + k[: -len(".weight")].replace(".", "_"): k for k in comfy_names if k.endswith(".weight")
    }
    node_cls().load(model, "hy.safetensors", 0, 1.0, 0.0)
    keys = calls["apply"][-1]["keys"]
    assert "lora_unet_double_blocks_0_img_mlp_0.lora_down.weight" in keys
    assert not any("mlp_fc1" in k or "mod_linear" in k or "modulation_linear" in k for k in keys)


def test_a_flux_lora_loads_on_flux_with_its_keys_untouched(comfy, calls, node_cls):
    path = _family_lora(comfy, "f.safetensors", "flux")
    node_cls().load(FakePatcher("Flux"), "f.safetensors", 0, 0.8, 0.0)
    assert calls["apply"][-1]["keys"] == sorted(read_header(path).keys())
