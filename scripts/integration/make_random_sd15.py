"""Write a full-size Stable Diffusion 1.5 checkpoint with random, seeded weights (a test model).

    <sd-scripts venv>/bin/python make_random_sd15.py --sd-scripts DIR --out FILE [--seed 1234]

The architecture is exactly SD1.5 (UNet 320 channels / 768 context, KL-f8 VAE, CLIP ViT-L/14 text
encoder); only the weights are random. It is built and saved with sd-scripts' own model code
(library/model_util.py: its diffusers configs and save_stable_diffusion_checkpoint), so the file has
the original LDM key layout that sd-scripts loads and ComfyUI's CheckpointLoaderSimple detects.
Run it with the sd-scripts environment (torch, diffusers, transformers). An existing file is kept.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# The CLIP ViT-L/14 text tower, as sd-scripts configures it for SD 1.x.
CLIP_L = dict(
    vocab_size=49408,
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-05,
    dropout=0.0,
    attention_dropout=0.0,
    initializer_range=0.02,
    initializer_factor=1.0,
    pad_token_id=1,
    bos_token_id=0,
    eos_token_id=2,
    model_type="clip_text_model",
    projection_dim=768,
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
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from library import model_util  # sd-scripts
    from transformers import CLIPTextConfig, CLIPTextModel

    t0 = time.time()
    torch.manual_seed(args.seed)
    unet = UNet2DConditionModel(**model_util.create_unet_diffusers_config(False))
    torch.manual_seed(args.seed + 1)
    vae = AutoencoderKL(**model_util.create_vae_diffusers_config())
    torch.manual_seed(args.seed + 2)
    text_encoder = CLIPTextModel(CLIPTextConfig(**CLIP_L))
    # One metadata key only: safetensors writes __metadata__ from a hash map, so with several keys
    # their order (and the file's bytes) would change from run to run.
    metadata = {"note": f"RANDOM WEIGHTS: an SD1.5-shaped test checkpoint, not a model; seed={args.seed}"}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".part.safetensors"  # sd-scripts picks the format from the extension
    keys = model_util.save_stable_diffusion_checkpoint(
        False, tmp, text_encoder, unet, None, 0, 0, metadata, save_dtype=torch.float16, vae=vae
    )
    os.replace(tmp, args.out)
    size = os.path.getsize(args.out) / 2**30
    print(f"wrote {keys} tensors ({size:.2f} GiB) to {args.out} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
