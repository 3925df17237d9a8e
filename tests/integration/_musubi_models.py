"""Full-size model headers for musubi-tuner's families, built from musubi-tuner's own model classes.

Run in musubi-tuner's Python (`MUSUBI_PYTHON _musubi_models.py MUSUBI_TUNER_PATH OUT.json`): each
model is instantiated on the `meta` device (no memory, no weights), and its state dict's names and
shapes are written out per fixture, in each spelling a user has on disk: musubi's/the original names
and ComfyUI's repackaged ones (Z-Image's fused qkv, HunyuanVideo 1.5's img_attn_qkv, the
`model.diffusion_model.` prefix musubi strips). `write_sparse()` (the pack's side, no torch) turns one
fixture into a sparse file: the real header, then the file truncated to its full size.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CKPT = "model.diffusion_model."


# --------------------------------------------------------------------------- musubi's side (torch)
def _shapes(module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def _qwen_image() -> dict:
    from musubi_tuner.qwen_image import qwen_image_model

    return _shapes(qwen_image_model.create_model("torch", False, False, False, False, None, num_layers=60))


def _wan(task: str) -> dict:
    from accelerate import init_empty_weights
    from musubi_tuner.wan.configs import WAN_CONFIGS
    from musubi_tuner.wan.modules.model import WanModel

    c = WAN_CONFIGS[task]
    with init_empty_weights():
        model = WanModel(
            model_type="i2v" if c.i2v else ("flf2v" if c.flf2v else "t2v"),
            model_version="2.2" if c.v2_2 else "2.1",
            dim=c.dim,
            eps=c.eps,
            ffn_dim=c.ffn_dim,
            freq_dim=c.freq_dim,
            in_dim=c.in_dim,
            num_heads=c.num_heads,
            num_layers=c.num_layers,
            out_dim=c.out_dim,
            text_len=c.text_len,
            attn_mode="torch",
            split_attn=False,
        )
    return _shapes(model)


def _wan_ti2v_5b() -> dict:
    """Wan 2.2 TI2V 5B, which musubi has no config for: WanModel with the 5B's sizes (Wan2.2 repo)."""
    from accelerate import init_empty_weights
    from musubi_tuner.wan.modules.model import WanModel

    with init_empty_weights():
        model = WanModel(
            model_type="t2v",
            model_version="2.2",
            dim=3072,
            eps=1e-6,
            ffn_dim=14336,
            freq_dim=256,
            in_dim=48,
            num_heads=24,
            num_layers=30,
            out_dim=48,
            text_len=512,
            attn_mode="torch",
            split_attn=False,
        )
    return _shapes(model)


def _z_image() -> dict:
    from musubi_tuner.zimage import zimage_model

    return _shapes(zimage_model.create_model("torch", False, None))


# musubi's zimage_model.load_zimage_model converts ComfyUI's names with these (its replace_keys).
_Z_IMAGE_COMFY = {
    "all_final_layer.2-1.linear": "final_layer.linear",
    "all_final_layer.2-1.adaLN_modulation": "final_layer.adaLN_modulation",
    "all_x_embedder.2-1.bias": "x_embedder.bias",
    "all_x_embedder.2-1.weight": "x_embedder.weight",
    ".attention.to_out.0.bias": ".attention.out.bias",
    ".attention.norm_k.weight": ".attention.k_norm.weight",
    ".attention.norm_q.weight": ".attention.q_norm.weight",
    ".attention.to_out.0.weight": ".attention.out.weight",
}


def z_image_comfy(shapes: dict) -> dict:
    """ComfyUI's Z-Image names: the renames above, and to_q/to_k/to_v fused into one qkv."""
    out = {}
    for key, shape in shapes.items():
        for musubi, comfy in _Z_IMAGE_COMFY.items():
            key = key.replace(musubi, comfy)
        if ".attention.to_k." in key or ".attention.to_v." in key:
            continue
        if ".attention.to_q." in key:
            key, shape = key.replace("to_q", "qkv"), [shape[0] * 3, *shape[1:]]
        out[key] = shape
    return out


def _flux2(version: str) -> dict:
    from accelerate import init_empty_weights
    from musubi_tuner.flux_2 import flux2_models, flux2_utils

    with init_empty_weights():
        return _shapes(flux2_models.Flux2(flux2_utils.FLUX2_MODEL_INFO[version].params, "torch", False))


def _flux_kontext() -> dict:
    from accelerate import init_empty_weights
    from musubi_tuner.flux import flux_models

    with init_empty_weights():
        return _shapes(flux_models.Flux(flux_models.configs_flux_dev_context.params, "torch", False))


def _hunyuan_video_1_5() -> dict:
    from musubi_tuner.hunyuan_video_1_5 import hunyuan_video_1_5_models

    return _shapes(hunyuan_video_1_5_models.create_model("t2v", "torch", False, None))


def hunyuan_video_1_5_comfy(shapes: dict) -> dict:
    """ComfyUI's HunyuanVideo 1.5 packs img/txt attention q, k, v into one qkv (musubi splits them)."""
    out = {}
    for key, shape in shapes.items():
        for part in ("img_attn", "txt_attn"):
            if f"{part}_k." in key or f"{part}_v." in key:
                break
            if f"{part}_q." in key:
                key, shape = key.replace(f"{part}_q.", f"{part}_qkv."), [shape[0] * 3, *shape[1:]]
        else:
            out[key] = shape
    return out


def _framepack() -> dict:
    from accelerate import init_empty_weights
    from musubi_tuner.frame_pack.hunyuan_video_packed import HunyuanVideoTransformer3DModelPacked

    with init_empty_weights():  # load_packed_model's arguments
        model = HunyuanVideoTransformer3DModelPacked(
            attention_head_dim=128,
            guidance_embeds=True,
            has_clean_x_embedder=True,
            has_image_proj=True,
            image_proj_dim=1152,
            in_channels=16,
            mlp_ratio=4.0,
            num_attention_heads=24,
            num_layers=20,
            num_refiner_layers=2,
            num_single_layers=40,
            out_channels=16,
            patch_size=2,
            patch_size_t=1,
            pooled_projection_dim=768,
            qk_norm="rms_norm",
            rope_axes_dim=(16, 56, 56),
            rope_theta=256.0,
            text_embed_dim=4096,
            attn_mode="torch",
            split_attn=False,
        )
    return _shapes(model)


def _components() -> dict[str, dict]:
    """Encoders and VAEs musubi loads, built as its loaders build them: file name -> shapes."""
    from accelerate import init_empty_weights
    from musubi_tuner.flux import flux_models
    from musubi_tuner.flux_2 import flux2_models
    from musubi_tuner.wan.modules.t5 import umt5_xxl
    from musubi_tuner.wan.modules.vae import WanVAE_

    with init_empty_weights():
        wan_vae = WanVAE_(
            dim=96,
            z_dim=16,
            dim_mult=[1, 2, 4, 4],
            num_res_blocks=2,
            attn_scales=[],
            temperal_downsample=[False, True, True],
            dropout=0.0,
        )
        return {
            "umt5-xxl-enc-bf16.safetensors": _shapes(umt5_xxl(encoder_only=True, return_tokenizer=False)),
            "wan_2.1_vae.safetensors": _shapes(wan_vae),
            "ae.safetensors": _shapes(
                flux_models.AutoEncoder(flux_models.configs_flux_dev_context.ae_params)
            ),
            "flux2-vae.safetensors": _shapes(flux2_models.AutoEncoder(flux2_models.AutoEncoderParams())),
            **_video_vaes(),
            **_text_encoders(),
        }


def _video_vaes() -> dict[str, dict]:
    """Qwen-Image's VAE in diffusers names, HunyuanVideo 1.5's and HunyuanVideo's (FramePack's)."""
    from musubi_tuner.hunyuan_model import vae as hv_vae
    from musubi_tuner.hunyuan_model.autoencoder_kl_causal_3d import AutoencoderKLCausal3D
    from musubi_tuner.hunyuan_video_1_5.hunyuan_video_1_5_vae import AutoencoderKLConv3D
    from musubi_tuner.qwen_image.qwen_image_autoencoder_kl import AutoencoderKLQwenImage

    qwen = AutoencoderKLQwenImage(
        base_dim=96,
        z_dim=16,
        dim_mult=[1, 2, 4, 4],
        num_res_blocks=2,
        attn_scales=[],
        temperal_downsample=[False, True, True],
        dropout=0.0,
        latents_mean=[0.0] * 16,
        latents_std=[1.0] * 16,
        input_channels=3,
    )
    hv15 = AutoencoderKLConv3D(  # hunyuan_video_1_5_vae.load_vae_from_checkpoint's arguments
        in_channels=3,
        out_channels=3,
        latent_channels=32,
        block_out_channels=(128, 256, 512, 1024, 1024),
        layers_per_block=2,
        ffactor_spatial=16,
        ffactor_temporal=4,
        sample_size=256,
        sample_tsize=64,
        scaling_factor=1.03682,
        shift_factor=None,
        downsample_match_channel=True,
        upsample_match_channel=True,
    )
    config = _json_const(hv_vae.load_vae, "AutoencoderKLCausal3D")
    return {
        "qwen_image_vae_diffusers.safetensors": _shapes(qwen),
        "hunyuanvideo15_vae_fp16.safetensors": _shapes(hv15),
        "hunyuan_video_vae_bf16.safetensors": _shapes(AutoencoderKLCausal3D.from_config(config)),
    }


def _json_const(fn, marker: str) -> dict:
    """A config musubi keeps as a JSON string constant inside a loader (its own sizes, no download)."""
    code = fn.__code__
    return json.loads(next(c for c in code.co_consts if isinstance(c, str) and marker in c and "{" in c))


def _text_encoders() -> dict[str, dict]:
    """Qwen2.5-VL 7B (Qwen-Image, HunyuanVideo 1.5), Qwen3 4B/8B (Z-Image, FLUX.2 klein) and Mistral 3
    (FLUX.2 dev) from the configs musubi's loaders build them with, in the files' names (musubi's
    Qwen2.5-VL loader maps model./visual. to transformers' model.language_model./model.visual.)."""
    from musubi_tuner.flux_2 import flux2_utils
    from musubi_tuner.qwen_image import qwen_image_utils
    from musubi_tuner.zimage import zimage_utils
    from transformers import (
        Mistral3Config,
        Mistral3ForConditionalGeneration,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen3Config,
        Qwen3ForCausalLM,
    )

    vl = Qwen2_5_VLForConditionalGeneration._from_config(
        Qwen2_5_VLConfig(
            **_json_const(qwen_image_utils.load_qwen2_5_vl, "Qwen2_5_VLForConditionalGeneration")
        )
    )
    vl_file = {
        k.replace("model.language_model.", "model.", 1).replace("model.visual.", "visual.", 1): s
        for k, s in _shapes(vl).items()
    }
    qwen3 = {}
    for size, marker in (("4b", '"hidden_size": 2560'), ("8b", '"hidden_size": 4096')):
        model = Qwen3ForCausalLM._from_config(Qwen3Config(**_json_const(zimage_utils.load_qwen3, marker)))
        qwen3[f"qwen_3_{size}.safetensors"] = {
            k: s for k, s in _shapes(model).items() if k != "lm_head.weight"
        }
    mistral = Mistral3ForConditionalGeneration._from_config(
        Mistral3Config(
            **_json_const(flux2_utils.Mistral3Embedder.__init__, "Mistral3ForConditionalGeneration")
        )
    )
    return {
        "qwen_2.5_vl_7b.safetensors": vl_file,
        **qwen3,
        "mistral_3_small_flux2_bf16.safetensors": _shapes(mistral),
    }


def fixtures() -> list[dict]:
    """Every family x variant x spelling: {name, family, variant, spelling, tensors, usable}."""
    out: list[dict] = []

    def add(name, family, variant, spelling, shapes, usable=True, extra=None):
        tensors = {k: ["BF16", s] for k, s in shapes.items()}
        tensors.update(extra or {})
        out.append(
            dict(name=name, family=family, variant=variant, spelling=spelling, tensors=tensors, usable=usable)
        )

    qwen = _qwen_image()
    add("qwen_image_bf16.safetensors", "qwen_image", "original", "ComfyUI", qwen)
    add(
        "qwen_image_prefixed.safetensors", "qwen_image", "original", "model.diffusion_model.", _prefixed(qwen)
    )
    add("qwen_image_edit_bf16.safetensors", "qwen_image", "edit", "ComfyUI", qwen)
    add("qwen_image_edit_2509_bf16.safetensors", "qwen_image", "edit-2509", "ComfyUI", qwen)
    flag = {"__index_timestep_zero__": ["BF16", [1]]}
    add("qwen_image_edit_2511_bf16.safetensors", "qwen_image", "edit-2511", "ComfyUI", qwen, extra=flag)
    scaled = {"scaled_fp8": ["F8_E4M3", [2]], "transformer_blocks.0.attn.to_q.scale_weight": ["F32", [1]]}
    add(
        "qwen_image_fp8_scaled.safetensors",
        "qwen_image",
        "original",
        "ComfyUI scaled fp8",
        qwen,
        False,
        scaled,
    )
    for task, name in (
        ("t2v-1.3B", "wan2.1_t2v_1.3B_bf16.safetensors"),
        ("t2v-14B", "wan2.1_t2v_14B_bf16.safetensors"),
        ("i2v-14B", "wan2.1_i2v_720p_14B_bf16.safetensors"),
        ("flf2v-14B", "wan2.1_flf2v_720p_14B_fp16.safetensors"),
        ("i2v-A14B", "wan2.2_i2v_high_noise_14B_fp16.safetensors"),
        ("t2v-A14B", "wan2.2_t2v_low_noise_14B_fp16.safetensors"),
    ):
        shapes = _wan(task)
        add(name, "wan", task, "ComfyUI", shapes)
        add(name.replace(".safetensors", "_prefixed.safetensors"), "wan", task, CKPT, _prefixed(shapes))
    add("wan2.2_ti2v_5B_fp16.safetensors", "wan", "ti2v-5B", "ComfyUI", _wan_ti2v_5b(), False)
    z = _z_image()
    add("z_image_diffusers.safetensors", "z_image", "", "musubi/diffusers", z)
    add("z_image_bf16.safetensors", "z_image", "", "ComfyUI", z_image_comfy(z))
    for version, name in (
        ("dev", "flux2-dev.safetensors"),
        ("klein-4b", "flux2-klein-4b.safetensors"),
        ("klein-9b", "flux2-klein-9b.safetensors"),
    ):
        add(name, "flux2", version, "BFL/ComfyUI", _flux2(version))
    add("flux2-klein-base-4b.safetensors", "flux2", "klein-base-4b", "BFL/ComfyUI", _flux2("klein-4b"))
    kontext = _flux_kontext()
    add("flux1-kontext-dev.safetensors", "flux_kontext", "", "BFL", kontext)
    add("flux1-dev-kontext_prefixed.safetensors", "flux_kontext", "", CKPT, _prefixed(kontext))
    hv = _hunyuan_video_1_5()
    add("hunyuanvideo1.5_720p_t2v_tencent.safetensors", "hunyuan_video_1_5", "t2v", "Tencent/musubi", hv)
    add(
        "hunyuanvideo1.5_720p_i2v_fp16.safetensors",
        "hunyuan_video_1_5",
        "i2v",
        "ComfyUI",
        hunyuan_video_1_5_comfy(hv),
    )
    add("FramePackI2V_HY_bf16.safetensors", "framepack", "", "Kijai/diffusers", _framepack())
    return out


def _prefixed(shapes: dict) -> dict:
    return {CKPT + k: s for k, s in shapes.items()}


def main(argv: list[str]) -> int:
    musubi_root, out = Path(argv[0]), Path(argv[1])
    sys.path.insert(0, str(musubi_root / "src"))
    import torch

    torch.cuda.current_device = lambda: 0  # wan/modules/t5.py calls it at import (a default argument)
    data = {"models": fixtures(), "components": _components()}
    out.write_text(json.dumps(data), encoding="utf-8")
    return 0


# --------------------------------------------------------------------------- the pack's side (no torch)
def write_sparse(path: Path, tensors: dict[str, list]) -> int:
    """The real header, then the file truncated to its full size (nothing written for the data)."""
    from lora_workbench.modelfiles.safetensors_header import write_safetensors_header_only

    write_safetensors_header_only(path, {k: (d, s) for k, (d, s) in tensors.items()})
    return path.stat().st_size


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
