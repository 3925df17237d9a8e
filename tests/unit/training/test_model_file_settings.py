"""Every extra model file a family asks for is picked from the train option that names it: a slot's
setting (Wan's `umt5` picks the file musubi takes as `--t5`), and a missing file is a sentence."""

from __future__ import annotations

import pytest

from lora_workbench.errors import ValidationError
from lora_workbench.modelfiles.detect import ModelInfo
from lora_workbench.training import train
from lora_workbench.training.backends import backends
from lora_workbench.training.model_files import FileSource
from lora_workbench.training.options import TrainOptions

RECIPES = [
    (backend.id, family, recipe)
    for backend in backends()
    for family, recipe in backend.recipes().items()
    if recipe.model_files
]


@pytest.mark.parametrize(("trainer", "family", "recipe"), RECIPES, ids=[f"{t}:{f}" for t, f, _ in RECIPES])
def test_a_familys_files_are_read_from_its_options_and_a_missing_one_is_a_sentence(trainer, family, recipe):
    model = ModelInfo("/models/diffusion_models/base.safetensors", family, "test")
    nowhere = FileSource({}, lambda folder, name: None)
    with pytest.raises(ValidationError, match="needs a"):
        train._pick_files(TrainOptions(), model, recipe, nowhere)
