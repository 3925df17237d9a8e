"""Run in musubi-tuner's python: for each family in FAMILIES.json ({name: {"family": id, "variant": str}}),
build musubi's own DiT on the meta device, create its LoRA network with musubi's network module (rank 1,
real tensors) and save the LoRA as musubi's trainer does (`save_weights`). Writes OUT.json
{name: {"model": {key: shape}, "lora": path, "module": network module, "lora_keys": n}}; the LoRA files
go to OUT_DIR.  usage: python musubi_lora_keys.py MUSUBI_DIR FAMILIES.json OUT.json OUT_DIR
"""

from __future__ import annotations

import json
import os
import sys

musubi_dir, src, dst, out_dir = sys.argv[1:5]
sys.path.insert(0, os.path.join(musubi_dir, "src"))

import importlib  # noqa: E402

import torch  # noqa: E402
from accelerate import init_empty_weights  # noqa: E402

# wan/modules/t5.py calls torch.cuda.current_device() for a default argument at import; on a machine
# without a GPU that raises, and the value is never used here.
if not torch.cuda.is_available():
    torch.cuda.current_device = lambda: 0


def _wan(variant: str):
    from musubi_tuner.wan.configs import WAN_CONFIGS
    from musubi_tuner.wan.modules.model import WanModel

    c = WAN_CONFIGS[variant]
    return WanModel(
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


def _qwen_image(variant: str):
    from musubi_tuner.qwen_image import qwen_image_model as m

    return m.create_model("torch", False, variant == "edit-2511", False, False, None)


def _z_image(variant: str):
    from musubi_tuner.zimage import zimage_model as m

    return m.create_model("torch", False, None)


def _flux_kontext(variant: str):
    from musubi_tuner.flux import flux_models as m

    return m.Flux(m.configs_flux_dev_context.params, "torch", False)


def _flux2(variant: str):
    from musubi_tuner.flux_2 import flux2_models as m
    from musubi_tuner.flux_2.flux2_utils import FLUX2_MODEL_INFO

    return m.Flux2(FLUX2_MODEL_INFO[variant].params, "torch", False)


def _hunyuan_video_1_5(variant: str):
    from musubi_tuner.hunyuan_video_1_5 import hunyuan_video_1_5_models as m

    return m.create_model(variant or "t2v", "torch", False, None)


def _framepack(variant: str):
    from musubi_tuner.frame_pack.hunyuan_video_packed import HunyuanVideoTransformer3DModelPacked

    return HunyuanVideoTransformer3DModelPacked(
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


# family id -> (DiT builder, musubi's network module for it)
BUILDERS = {
    "wan": (_wan, "musubi_tuner.networks.lora_wan"),
    "qwen_image": (_qwen_image, "musubi_tuner.networks.lora_qwen_image"),
    "z_image": (_z_image, "musubi_tuner.networks.lora_zimage"),
    "flux_kontext": (_flux_kontext, "musubi_tuner.networks.lora_flux"),
    "flux2": (_flux2, "musubi_tuner.networks.lora_flux_2"),
    "hunyuan_video_1_5": (_hunyuan_video_1_5, "musubi_tuner.networks.lora_hv_1_5"),
    "framepack": (_framepack, "musubi_tuner.networks.lora_framepack"),
}

out = {}
for name, spec in json.loads(open(src, encoding="utf-8").read()).items():
    build, module = BUILDERS[spec["family"]]
    with init_empty_weights():
        dit = build(spec.get("variant", ""))
    network = importlib.import_module(module).create_arch_network(1.0, 1, 1.0, None, [], dit)
    network.apply_to(None, dit, apply_text_encoder=False, apply_unet=True)  # as trainer_base does
    path = os.path.join(out_dir, f"{name}.safetensors")
    network.save_weights(path, torch.float16, {"ss_base_model_version": spec.get("base_version", "")})
    out[name] = {
        "model": {k: list(v.shape) for k, v in dit.state_dict().items()},
        "lora": path,
        "module": module,
        "lora_keys": len(network.state_dict()),
    }
    del dit, network
open(dst, "w", encoding="utf-8").write(json.dumps(out))
