"""Synthetic headers of every model family: the tensor names and shapes the real files have, written
from each architecture's published sizes (FLUX.1: 19 double + 38 single blocks at width 3072, ...).

The integration tier checks these key sets against sd-scripts' own model classes (built on the meta
device) and ComfyUI's model detection, so a unit test that passes here passes on the real files.
`write_model(..., sparse=True)` writes the header and truncates the file to its full size: a
24 GB FLUX file that takes a few KB of disk.
"""

from __future__ import annotations

from pathlib import Path

from lora_workbench.modelfiles.safetensors_header import write_safetensors_header_only

Tensors = dict[str, tuple[str, list[int]]]


class _Builder:
    def __init__(self, dtype: str = "BF16"):
        self.dtype = dtype
        self.t: Tensors = {}

    def add(self, name: str, *shape: int) -> None:
        self.t[name] = (self.dtype, list(shape))

    def lin(self, name: str, out: int, inp: int, bias: bool = True) -> None:
        self.add(f"{name}.weight", out, inp)
        if bias:
            self.add(f"{name}.bias", out)

    def norm(self, name: str, dim: int, param: str = "weight", bias: bool = False) -> None:
        self.add(f"{name}.{param}", dim)
        if bias:
            self.add(f"{name}.bias", dim)


# --------------------------------------------------------------------------- FLUX.1 / Chroma (BFL names)
def _flux_blocks(b: _Builder, modulation: bool, double: int = 19, single: int = 38, h: int = 3072) -> None:
    for i in range(double):
        p = f"double_blocks.{i}"
        for s in ("img", "txt"):
            if modulation:
                b.lin(f"{p}.{s}_mod.lin", 6 * h, h)
            b.lin(f"{p}.{s}_attn.qkv", 3 * h, h)
            b.norm(f"{p}.{s}_attn.norm.query_norm", 128, "scale")
            b.norm(f"{p}.{s}_attn.norm.key_norm", 128, "scale")
            b.lin(f"{p}.{s}_attn.proj", h, h)
            b.lin(f"{p}.{s}_mlp.0", 4 * h, h)
            b.lin(f"{p}.{s}_mlp.2", h, 4 * h)
    for i in range(single):
        p = f"single_blocks.{i}"
        b.lin(f"{p}.linear1", 3 * h + 4 * h, h)
        b.lin(f"{p}.linear2", h, h + 4 * h)
        b.norm(f"{p}.norm.query_norm", 128, "scale")
        b.norm(f"{p}.norm.key_norm", 128, "scale")
        if modulation:
            b.lin(f"{p}.modulation.lin", 3 * h, h)


def flux(variant: str = "dev", prefix: str = "") -> Tensors:
    h = 3072
    b = _Builder()
    b.lin("img_in", h, 64)
    for emb, width in (("time_in", 256), ("vector_in", 768)) + (
        (("guidance_in", 256),) if variant == "dev" else ()
    ):
        b.lin(f"{emb}.in_layer", h, width)
        b.lin(f"{emb}.out_layer", h, h)
    b.lin("txt_in", h, 4096)
    _flux_blocks(b, modulation=True)
    b.lin("final_layer.linear", 64, h)
    b.lin("final_layer.adaLN_modulation.1", 2 * h, h)
    return {prefix + k: v for k, v in b.t.items()}


def chroma(prefix: str = "") -> Tensors:
    h, g = 3072, 5120
    b = _Builder()
    b.lin("img_in", h, 64)
    b.lin("distilled_guidance_layer.in_proj", g, 64)
    for i in range(5):
        b.lin(f"distilled_guidance_layer.layers.{i}.in_layer", g, g)
        b.lin(f"distilled_guidance_layer.layers.{i}.out_layer", g, g)
    for i in range(5):
        b.norm(f"distilled_guidance_layer.norms.{i}", g, "scale")
    b.lin("distilled_guidance_layer.out_proj", h, g)
    b.lin("txt_in", h, 4096)
    _flux_blocks(b, modulation=False)
    b.lin("final_layer.linear", 64, h)
    return {prefix + k: v for k, v in b.t.items()}


def flux_ae(prefix: str = "") -> Tensors:
    """The 16-channel AE's telling tensors (FLUX.1 ae.safetensors, the SD3 VAE has the same shapes)."""
    b = _Builder("F32")
    b.add("encoder.conv_in.weight", 128, 3, 3, 3)
    b.add("encoder.conv_out.weight", 32, 512, 3, 3)
    b.add("decoder.conv_in.weight", 512, 16, 3, 3)
    b.add("decoder.conv_out.weight", 3, 128, 3, 3)
    return {prefix + k: v for k, v in b.t.items()}


# --------------------------------------------------------------------------- SD 3 / 3.5 (MMDiT)
SD3_VARIANTS = {  # depth, pos_embed side, qk norm, blocks with a second x attention
    "medium": (24, 192, False, 0),
    "3.5-medium": (24, 384, True, 13),
    "3.5-large": (38, 192, True, 0),
}


def _sd3_half(b: _Builder, p: str, h: int, qk: bool, last: bool, attn2: bool) -> None:
    b.lin(f"{p}.attn.qkv", 3 * h, h)
    if not last:
        b.lin(f"{p}.attn.proj", h, h)
    if qk:
        b.norm(f"{p}.attn.ln_q", 64)
        b.norm(f"{p}.attn.ln_k", 64)
    if attn2:
        b.lin(f"{p}.attn2.qkv", 3 * h, h)
        b.lin(f"{p}.attn2.proj", h, h)
        if qk:
            b.norm(f"{p}.attn2.ln_q", 64)
            b.norm(f"{p}.attn2.ln_k", 64)
    if not last:
        b.lin(f"{p}.mlp.fc1", 4 * h, h)
        b.lin(f"{p}.mlp.fc2", h, 4 * h)
    b.lin(f"{p}.adaLN_modulation.1", (2 if last else 9 if attn2 else 6) * h, h)


def sd3_mmdit(variant: str = "3.5-large", prefix: str = "model.diffusion_model.") -> Tensors:
    depth, side, qk, attn2_blocks = SD3_VARIANTS[variant]
    h = 64 * depth
    b = _Builder("F16")
    b.add("pos_embed", 1, side * side, h)
    b.add("x_embedder.proj.weight", h, 16, 2, 2)
    b.add("x_embedder.proj.bias", h)
    b.lin("t_embedder.mlp.0", h, 256)
    b.lin("t_embedder.mlp.2", h, h)
    b.lin("y_embedder.mlp.0", h, 2048)
    b.lin("y_embedder.mlp.2", h, h)
    b.lin("context_embedder", h, 4096)
    for i in range(depth):
        last = i == depth - 1
        _sd3_half(b, f"joint_blocks.{i}.context_block", h, qk, last, False)
        _sd3_half(b, f"joint_blocks.{i}.x_block", h, qk, False, i < attn2_blocks)
    b.lin("final_layer.linear", 64, h)
    b.lin("final_layer.adaLN_modulation.1", 2 * h, h)
    return {prefix + k: v for k, v in b.t.items()}


def clip_l(prefix: str = "") -> Tensors:
    b = _Builder("F16")
    b.add("text_model.embeddings.token_embedding.weight", 49408, 768)
    b.add("text_model.embeddings.position_embedding.weight", 77, 768)
    for i in range(12):
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            b.lin(f"text_model.encoder.layers.{i}.self_attn.{proj}", 768, 768)
        b.lin(f"text_model.encoder.layers.{i}.mlp.fc1", 3072, 768)
        b.lin(f"text_model.encoder.layers.{i}.mlp.fc2", 768, 3072)
    b.norm("text_model.final_layer_norm", 768, bias=True)
    return {prefix + k: v for k, v in b.t.items()}


def clip_g(prefix: str = "") -> Tensors:
    b = _Builder("F16")
    b.add("text_model.embeddings.token_embedding.weight", 49408, 1280)
    for i in range(32):
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            b.lin(f"text_model.encoder.layers.{i}.self_attn.{proj}", 1280, 1280)
    b.add("text_projection.weight", 1280, 1280)
    return {prefix + k: v for k, v in b.t.items()}


def t5xxl(prefix: str = "", d_model: int = 4096, blocks: int = 24) -> Tensors:
    inner = 4096 if d_model == 4096 else 384  # T5-XXL: 64 heads x 64; ByT5-small glyph: 6 x 64
    b = _Builder("F16")
    b.add("shared.weight", 32128 if d_model == 4096 else 1510, d_model)
    for i in range(blocks):
        for proj in ("q", "k", "v"):
            b.add(f"encoder.block.{i}.layer.0.SelfAttention.{proj}.weight", inner, d_model)
        b.add(f"encoder.block.{i}.layer.0.SelfAttention.o.weight", d_model, inner)
    return {prefix + k: v for k, v in b.t.items()}


def byt5(prefix: str = "") -> Tensors:
    return t5xxl(prefix, d_model=1472, blocks=12)


def sd3_checkpoint(variant: str = "medium", with_text_encoders: bool = True) -> Tensors:
    """A single-file SD3 checkpoint: MMDiT + VAE (first_stage_model.) + optionally the three encoders."""
    out = sd3_mmdit(variant)
    out.update(flux_ae("first_stage_model."))
    if with_text_encoders:
        out.update(clip_l("text_encoders.clip_l.transformer."))
        out.update(clip_g("text_encoders.clip_g.transformer."))
        out.update(t5xxl("text_encoders.t5xxl.transformer."))
    return out


# --------------------------------------------------------------------------- Lumina Image 2.0 (Next-DiT 2B)
def _lumina_block(b: _Builder, p: str, modulation: bool, h: int = 2304) -> None:
    b.add(f"{p}.attention.qkv.weight", 3840, h)
    b.add(f"{p}.attention.out.weight", h, h)
    b.norm(f"{p}.attention.q_norm", 96)
    b.norm(f"{p}.attention.k_norm", 96)
    b.add(f"{p}.feed_forward.w1.weight", 9216, h)
    b.add(f"{p}.feed_forward.w2.weight", h, 9216)
    b.add(f"{p}.feed_forward.w3.weight", 9216, h)
    for n in ("attention_norm1", "ffn_norm1", "attention_norm2", "ffn_norm2"):
        b.norm(f"{p}.{n}", h)
    if modulation:
        b.lin(f"{p}.adaLN_modulation.1", 4 * h, 1024)


def lumina2(prefix: str = "") -> Tensors:
    h = 2304
    b = _Builder()
    b.lin("t_embedder.mlp.0", 1024, 256)
    b.lin("t_embedder.mlp.2", 1024, 1024)
    b.norm("cap_embedder.0", h)
    b.lin("cap_embedder.1", h, h)
    for i in range(2):
        _lumina_block(b, f"context_refiner.{i}", modulation=False)
    b.lin("x_embedder", h, 64)
    for i in range(2):
        _lumina_block(b, f"noise_refiner.{i}", modulation=True)
    for i in range(26):
        _lumina_block(b, f"layers.{i}", modulation=True)
    b.norm("norm_final", h)
    b.lin("final_layer.linear", 64, h)
    b.lin("final_layer.adaLN_modulation.1", h, 1024)
    return {prefix + k: v for k, v in b.t.items()}


def gemma2(prefix: str = "model.") -> Tensors:
    b = _Builder()
    b.add("embed_tokens.weight", 256000, 2304)
    for i in range(26):
        b.add(f"layers.{i}.self_attn.q_proj.weight", 2048, 2304)
        b.add(f"layers.{i}.self_attn.k_proj.weight", 1024, 2304)
        b.add(f"layers.{i}.self_attn.v_proj.weight", 1024, 2304)
        b.add(f"layers.{i}.self_attn.o_proj.weight", 2304, 2048)
    return {prefix + k: v for k, v in b.t.items()}


# --------------------------------------------------------------------------- HunyuanImage 2.1 (Tencent names)
def hunyuan_image(names: str = "tencent", prefix: str = "") -> Tensors:
    """The DiT as Tencent ships it (img_mlp.fc1, img_mod.linear); names="comfy" gives ComfyUI's names."""
    h = 3584
    b = _Builder()
    b.norm("byt5_in.layernorm", 1472, bias=True)
    b.lin("byt5_in.fc1", 2048, 1472)
    b.lin("byt5_in.fc2", 2048, 2048)
    b.lin("byt5_in.fc3", h, 2048)
    b.add("img_in.proj.weight", h, 64, 1, 1)
    b.add("img_in.proj.bias", h)
    b.lin("txt_in.input_embedder", h, h)
    b.lin("txt_in.t_embedder.mlp.0", h, 256)
    b.lin("txt_in.t_embedder.mlp.2", h, h)
    b.lin("txt_in.c_embedder.linear_1", h, h)
    b.lin("txt_in.c_embedder.linear_2", h, h)
    for i in range(2):
        p = f"txt_in.individual_token_refiner.blocks.{i}"
        b.norm(f"{p}.norm1", h, bias=True)
        b.lin(f"{p}.self_attn_qkv", 3 * h, h)
        b.lin(f"{p}.self_attn_proj", h, h)
        b.norm(f"{p}.norm2", h, bias=True)
        b.lin(f"{p}.mlp.fc1", 4 * h, h)
        b.lin(f"{p}.mlp.fc2", h, 4 * h)
        b.lin(f"{p}.adaLN_modulation.1", 2 * h, h)
    b.lin("time_in.mlp.0", h, 256)
    b.lin("time_in.mlp.2", h, h)
    for i in range(20):
        for s in ("img", "txt"):
            p = f"double_blocks.{i}.{s}"
            b.lin(f"{p}_mod.linear", 6 * h, h)
            b.lin(f"{p}_attn_qkv", 3 * h, h)
            b.norm(f"{p}_attn_q_norm", 128)
            b.norm(f"{p}_attn_k_norm", 128)
            b.lin(f"{p}_attn_proj", h, h)
            b.lin(f"{p}_mlp.fc1", 4 * h, h)
            b.lin(f"{p}_mlp.fc2", h, 4 * h)
    for i in range(40):
        p = f"single_blocks.{i}"
        b.lin(f"{p}.linear1", 7 * h, h)
        b.lin(f"{p}.linear2", h, 5 * h)
        b.norm(f"{p}.q_norm", 128)
        b.norm(f"{p}.k_norm", 128)
        b.lin(f"{p}.modulation.linear", 3 * h, h)
    b.lin("final_layer.linear", 64, h)
    b.lin("final_layer.adaLN_modulation.1", 2 * h, h)
    out = b.t
    if names == "comfy":  # what ComfyUI's HunyuanVideo.process_unet_state_dict turns them into
        out = {_comfy_hunyuan_name(k): v for k, v in out.items()}
    return {prefix + k: v for k, v in out.items()}


def _comfy_hunyuan_name(k: str) -> str:
    for a, b in (("_mod.linear.", "_mod.lin."), ("_attn_qkv.", "_attn.qkv."), ("_attn_proj.", "_attn.proj.")):
        k = k.replace(a, b)
    if k.startswith("double_blocks."):
        k = k.replace("mlp.fc1.", "mlp.0.").replace("mlp.fc2.", "mlp.2.")
    return k.replace(".modulation.linear.", ".modulation.lin.")


def hunyuan_vae() -> Tensors:
    b = _Builder("F16")
    b.add("encoder.conv_in.weight", 128, 3, 3, 3)
    b.add("decoder.conv_in.weight", 1024, 64, 3, 3)
    return b.t


def qwen2_5_vl(prefix: str = "model.") -> Tensors:
    b = _Builder()
    b.add("embed_tokens.weight", 152064, 3584)
    for i in range(28):
        b.lin(f"layers.{i}.self_attn.q_proj", 3584, 3584)
        b.lin(f"layers.{i}.self_attn.k_proj", 512, 3584)
    out = {prefix + k: v for k, v in b.t.items()}
    out["visual.blocks.0.attn.qkv.weight"] = ("BF16", [3840, 1280])
    return out


# --------------------------------------------------------------------------- Anima (Cosmos-style DiT + LLM adapter)
def anima(prefix: str = "net.") -> Tensors:
    h, a = 2048, 1024
    b = _Builder()
    b.add("x_embedder.proj.1.weight", h, 68)
    b.add("t_embedder.1.linear_1.weight", h, h)
    b.add("t_embedder.1.linear_2.weight", 3 * h, h)
    b.add("llm_adapter.embed.weight", 32128, a)
    for i in range(6):
        p = f"llm_adapter.blocks.{i}"
        b.norm(f"{p}.norm_self_attn", a)
        b.norm(f"{p}.norm_cross_attn", a)
        for attn in ("self_attn", "cross_attn"):
            for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
                b.add(f"{p}.{attn}.{proj}.weight", a, a)
            b.norm(f"{p}.{attn}.q_norm", 64)
            b.norm(f"{p}.{attn}.k_norm", 64)
        b.norm(f"{p}.norm_mlp", a)
        b.lin(f"{p}.mlp.0", 4 * a, a)
        b.lin(f"{p}.mlp.2", a, 4 * a)
    b.lin("llm_adapter.out_proj", a, a)
    b.norm("llm_adapter.norm", a)
    for i in range(28):
        p = f"blocks.{i}"
        for attn, kv in (("self_attn", h), ("cross_attn", a)):
            b.add(f"{p}.{attn}.q_proj.weight", h, h)
            b.norm(f"{p}.{attn}.q_norm", 128)
            b.add(f"{p}.{attn}.k_proj.weight", h, kv)
            b.norm(f"{p}.{attn}.k_norm", 128)
            b.add(f"{p}.{attn}.v_proj.weight", h, kv)
            b.add(f"{p}.{attn}.output_proj.weight", h, h)
        b.add(f"{p}.mlp.layer1.weight", 4 * h, h)
        b.add(f"{p}.mlp.layer2.weight", h, 4 * h)
        for mod in ("self_attn", "cross_attn", "mlp"):
            b.add(f"{p}.adaln_modulation_{mod}.1.weight", 256, h)
            b.add(f"{p}.adaln_modulation_{mod}.2.weight", 3 * h, 256)
    b.add("final_layer.linear.weight", 64, h)
    b.add("final_layer.adaln_modulation.1.weight", 256, h)
    b.add("final_layer.adaln_modulation.2.weight", 2 * h, 256)
    b.norm("t_embedding_norm", h)
    return {prefix + k: v for k, v in b.t.items()}


def qwen3_06b(prefix: str = "model.") -> Tensors:
    b = _Builder()
    b.add("embed_tokens.weight", 151936, 1024)
    for i in range(28):
        b.add(f"layers.{i}.self_attn.q_proj.weight", 2048, 1024)
        b.add(f"layers.{i}.self_attn.k_proj.weight", 1024, 1024)
        b.norm(f"layers.{i}.self_attn.q_norm", 128)
        b.norm(f"layers.{i}.self_attn.k_norm", 128)
    return {prefix + k: v for k, v in b.t.items()}


def qwen_image_vae() -> Tensors:
    b = _Builder("BF16")
    b.add("encoder.conv_in.weight", 96, 3, 3, 3, 3)
    b.add("decoder.conv_in.weight", 384, 16, 3, 3, 3)
    return b.t


# --------------------------------------------------------------------------- SD 1.x / 2.x / SDXL (markers)
def sd_unet(width: int = 768, prefix: str = "model.diffusion_model.") -> Tensors:
    b = _Builder("F16")
    b.add("input_blocks.0.0.weight", 320, 4, 3, 3)
    b.add("input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", 320, width)
    b.add("input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight", 640, width)
    return {prefix + k: v for k, v in b.t.items()}


# The base model of every family, as ComfyUI keeps it: (family, variant, tensors, folder).
def every_family() -> list[tuple[str, str, Tensors, str]]:
    return [
        ("sd1", "", {**sd_unet(768), **clip_l("cond_stage_model.transformer.")}, "checkpoints"),
        (
            "sdxl",
            "",
            {**sd_unet(2048), "conditioner.embedders.1.model.ln_final.weight": ("F16", [1280])},
            "checkpoints",
        ),
        ("sd3", "medium", sd3_checkpoint("medium"), "checkpoints"),
        ("sd3", "3.5-medium", sd3_checkpoint("3.5-medium", with_text_encoders=False), "checkpoints"),
        ("sd3", "3.5-large", sd3_checkpoint("3.5-large", with_text_encoders=False), "checkpoints"),
        ("flux", "dev", flux("dev"), "diffusion_models"),
        ("flux", "schnell", flux("schnell"), "diffusion_models"),
        ("chroma", "", chroma(), "diffusion_models"),
        ("lumina2", "", lumina2(), "diffusion_models"),
        ("hunyuan_image", "2.1", hunyuan_image(), "diffusion_models"),
        ("anima", "", anima(), "diffusion_models"),
    ]


def write_model(path: Path, tensors: Tensors, metadata: dict | None = None) -> Path:
    """A valid safetensors file of the full size whose data is a hole (sparse where the disk allows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_safetensors_header_only(path, tensors, metadata)
    return path


def size_of(tensors: Tensors) -> int:
    sizes = {"F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1}
    total = 0
    for dtype, shape in tensors.values():
        n = sizes[dtype]
        for d in shape:
            n *= d
        total += n
    return total


# --------------------------------------------------------------------------- the LoRAs sd-scripts writes
# Which layers each family's network module wraps (networks/lora_*.py target modules, default args):
# every Linear inside them becomes lora_unet_<path with "_">.
LORA_TARGETS = {
    "flux": r"^(double_blocks|single_blocks)\.",
    "chroma": r"^(double_blocks|single_blocks)\.",
    "sd3": r"^joint_blocks\.",
    "lumina2": r"^(context_refiner|noise_refiner|layers|final_layer)\.",
    "hunyuan_image": r"^(double_blocks|single_blocks)\.",
    "anima": r"^blocks\.\d+\.(self_attn|cross_attn|mlp)\.",
}


def kohya_lora(model: Tensors, family: str, rank: int = 4, strip: str = "") -> Tensors:
    """The LoRA tensors sd-scripts' network for `family` writes for `model` (DiT part only)."""
    import re

    target = re.compile(LORA_TARGETS[family])
    out: Tensors = {}
    for name, (_dtype, shape) in model.items():
        path = name[len(strip) :] if strip and name.startswith(strip) else name
        if not (target.search(path) and path.endswith(".weight") and len(shape) == 2):
            continue
        module = "lora_unet_" + path[: -len(".weight")].replace(".", "_")
        out[module + ".lora_down.weight"] = ("F16", [rank, shape[1]])
        out[module + ".lora_up.weight"] = ("F16", [shape[0], rank])
        out[module + ".alpha"] = ("F16", [])
    return out


def kohya_te_lora(prefix: str, te: Tensors, strip: str = "", rank: int = 4) -> Tensors:
    """Text-encoder LoRA tensors (lora_te_/lora_te1_/...) for the attention projections of `te`."""
    out: Tensors = {}
    for name, (_dtype, shape) in te.items():
        path = name[len(strip) :] if name.startswith(strip) else name
        if len(shape) == 2 and path.endswith(("q_proj.weight", "SelfAttention.q.weight")):
            module = prefix + path[: -len(".weight")].replace(".", "_")
            out[module + ".lora_down.weight"] = ("F16", [rank, shape[1]])
            out[module + ".lora_up.weight"] = ("F16", [shape[0], rank])
    return out
