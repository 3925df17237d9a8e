"""Write a full-size SDXL base checkpoint with random, seeded weights (a test model; 6.5 GiB).

    <sd-scripts venv>/bin/python make_random_sdxl.py --sd-scripts DIR --out FILE [--seed 1234]

The architecture is exactly SDXL 1.0 base (UNet 2.6B, CLIP ViT-L, OpenCLIP ViT-bigG with projection,
KL-f8 VAE); only the weights are random. It is built and saved with sd-scripts' own model code
(library/sdxl_original_unet.py, sdxl_model_util.save_stable_diffusion_checkpoint), so the file has
the key layout sdxl_train_network.py loads and ComfyUI detects as SDXL. The models are built in fp16
directly, so the peak memory stays near the file size (about 15 GiB in all). An existing file is kept.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from make_random_sd15 import CLIP_L

# OpenCLIP ViT-bigG/14 as a transformers CLIP text model (sd-scripts' text encoder 2).
CLIP_BIG_G = dict(
    CLIP_L,
    hidden_size=1280,
    intermediate_size=5120,
    num_hidden_layers=32,
    num_attention_heads=20,
    hidden_act="gelu",
    projection_dim=1280,
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sd-scripts", required=True, help="the sd-scripts checkout")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    if os.path.exists(args.out):
        print(f"exists, kept: {args.out}")
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    sys.path.insert(0, os.path.abspath(args.sd_scripts))

    import torch
    from diffusers import AutoencoderKL
    from library import model_util, sdxl_model_util, sdxl_original_unet  # sd-scripts
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    t0 = time.time()
    torch.set_default_dtype(torch.float16)  # no fp32 copy of 2.6B parameters
    torch.manual_seed(args.seed)
    unet = sdxl_original_unet.SdxlUNet2DConditionModel()
    torch.manual_seed(args.seed + 1)
    te1 = CLIPTextModel(CLIPTextConfig(**CLIP_L))
    torch.manual_seed(args.seed + 2)
    te2 = CLIPTextModelWithProjection(CLIPTextConfig(**CLIP_BIG_G))
    torch.manual_seed(args.seed + 3)
    vae = AutoencoderKL(**model_util.create_vae_diffusers_config())
    torch.set_default_dtype(torch.float32)
    metadata = {"note": f"RANDOM WEIGHTS: an SDXL-shaped test checkpoint, not a model; seed={args.seed}"}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".part.safetensors"
    logit_scale = torch.tensor(4.6052, dtype=torch.float16)  # ln(100), OpenCLIP's trained value
    keys = sdxl_model_util.save_stable_diffusion_checkpoint(
        tmp, te1, te2, unet, 0, 0, None, vae, logit_scale, metadata
    )
    os.replace(tmp, args.out)
    size = os.path.getsize(args.out) / 2**30
    print(f"wrote {keys} tensors ({size:.2f} GiB) to {args.out} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
