"""What sd-scripts does differently for a few families, as tables the command builders read
(training/command.py), so that no builder asks which family it builds for."""

from __future__ import annotations

# --v2: train_network.py loads SD 2.x's text encoder and UNet config only when told.
V2_FAMILIES = frozenset({"sd2"})
# --no_half_vae under fp16: SDXL's VAE overflows in half precision.
FP16_VAE_OVERFLOWS = frozenset({"sdxl"})
# sdxl_train_network.py refuses cached text-encoder outputs while it trains the text encoders.
TE_CACHE_REFUSES_TE_TRAINING = frozenset({"sdxl"})
# Families whose text-encoder cache follows caption dropout (Anima's strategy drops cached captions).
TE_CACHE_FOLLOWS_CAPTION_DROPOUT = frozenset({"anima"})
