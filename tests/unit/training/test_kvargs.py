"""network_args and optimizer_args: key=value pairs checked per key and written in one canonical form,
never raw text."""

from __future__ import annotations

import pytest

from lora_workbench.errors import ValidationError
from lora_workbench.training import kvargs
from lora_workbench.training.options import TrainOptions
from lora_workbench.training.validation import validate

PRODIGY = "decouple=True weight_decay=0.01 d_coef=2 use_bias_correction=True safeguard_warmup=True"


def test_the_prodigy_preset_is_taken_as_meant():
    assert kvargs.optimizer_args(PRODIGY, "Prodigy") == [
        "decouple=True",
        "weight_decay=0.01",
        "d_coef=2.0",
        "use_bias_correction=True",
        "safeguard_warmup=True",
    ]


def test_values_are_written_canonically():
    assert kvargs.optimizer_args('"betas=0.9,0.99" eps=1e-8 amsgrad=yes', "AdamW") == [
        "betas=0.9,0.99",
        "eps=1e-08",
        "amsgrad=True",
    ]
    assert kvargs.network_args("preset=attn-mlp use_tucker=false factor=-1", "lycoris_lokr") == [
        "preset=attn-mlp",
        "use_tucker=False",
        "factor=-1",
    ]
    assert kvargs.network_args("down_lr_weight=sine+.5 block_dims=2,4,8", "lora") == [
        "down_lr_weight=sine+0.5",
        "block_dims=2,4,8",
    ]


@pytest.mark.parametrize(
    ("text", "target", "message"),
    [
        ("decouple=True", "AdamW", "decouple is not read by the AdamW optimizer"),
        ("bogus=1", "AdamW", "bogus is not a key"),
        ("weight_decay=abc", "AdamW", "weight_decay is 'abc'; it must be a number"),
        ("weight_decay=nan", "AdamW", "a finite number"),
        ("betas=0.9", "AdamW", "2 to 3 numbers"),
        ("weight_decay", "AdamW", "not a key=value pair"),
        ("weight_decay=0.1 weight_decay=0.2", "AdamW", "given twice"),
        ("weight_decay=0.1;rm", "AdamW", "may only hold letters"),
        ("lr=1 --output_dir=/etc", "AdamW", "not a key=value pair"),
    ],
)
def test_bad_optimizer_args_are_sentences(text, target, message):
    with pytest.raises(ValidationError, match=message):
        kvargs.optimizer_args(text, target)


@pytest.mark.parametrize(
    ("text", "target", "message"),
    [
        ("conv_dim=8", "locon", "has its own setting; set conv_dim"),
        ("algo=loha", "lycoris_locon", "set network_type"),
        ("preset=/tmp/evil.toml", "lycoris_loha", "value of preset .* may only hold"),
        ("preset=evil.toml", "lycoris_loha", "preset is 'evil.toml'; it must be one of full"),
        ("factor=4", "lycoris_loha", "not read by network_type lycoris_loha"),
        ("use_tucker=maybe", "lycoris_locon", "True or False"),
        ("block_dims=2,x", "lora", "whole number"),
    ],
)
def test_bad_network_args_are_sentences(text, target, message):
    with pytest.raises(ValidationError, match=message):
        kvargs.network_args(text, target)


def test_the_option_checks_use_the_chosen_network_and_optimizer():
    validate(TrainOptions(optimizer="Prodigy", optimizer_args=PRODIGY))
    with pytest.raises(ValidationError, match="not read by the AdamW optimizer"):
        validate(TrainOptions(optimizer_args=PRODIGY))
    validate(TrainOptions(network_type="lycoris_lokr", network_args="factor=8"))
    with pytest.raises(ValidationError, match="not read by network_type lora"):
        validate(TrainOptions(network_args="factor=8"))


@pytest.mark.parametrize("value", ["(0.9,0.99)", "[0.9,0.99]", "(0.9,0.99,)", "'0.9,0.99'", '"0.9,0.99"'])
def test_a_tuple_or_quoted_value_sd_scripts_literal_evals_is_read_like_the_bare_one(value):
    assert kvargs.optimizer_args(f"betas={value} decouple=True", "Prodigy") == [
        "betas=0.9,0.99",
        "decouple=True",
    ]
