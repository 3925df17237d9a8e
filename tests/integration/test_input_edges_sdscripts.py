"""Input edges, read by the real sd-scripts (issue 18): its own code (train_util.load_prompts, and the
dataset group train_network builds from a dataset TOML) reads what the pack refuses and what it
writes, in its own environment. No training runs: parsing only (~20 s, one sd-scripts process).

1. Every sample prompt the pack refuses makes sd-scripts take a ControlNet image path (`--cn`, a file
   it would open), and the prompts file the pack writes gives sd-scripts the same prompts, none with
   a file to open.
2. The caption keywords the pack counts are the tags of the caption sd-scripts trains on (its first
   line), whatever the line endings.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from lora_workbench.dataset import captions
from lora_workbench.dataset import scan as dataset
from lora_workbench.training import command, sample_prompts
from lora_workbench.training.options import TrainOptions
from tests.unit.training.test_attacks_sample_prompts import FILE_NAMING

pytestmark = pytest.mark.integration

WRITTEN = (
    "a cat --n cnn --ss euler\n\n# a note --cn /etc/passwd\ncnn news anchor\na cat --cnx y\na dog\t--cn x\n"
)
CAPTIONS = {
    "lf": b"red hat, smiling\nhidden, secret",
    "crlf": b"red hat, smiling\r\nhidden\r\n",
    "cr": b"red hat, smiling\rhidden",
    "blank": b"\nhidden, secret",
    "spaces": b"  \t \nhidden",
    "u2028": "red\u2028hat, x\nhidden".encode(),
    "bom": b"\xef\xbb\xbfbom tag\nhidden",
}

READER = """
import json, sys
import train_network
from library import config_util, train_util
prompt_files, dataset_toml = json.loads(sys.argv[1]), sys.argv[2]
prompts = {name: train_util.load_prompts(path) for name, path in prompt_files.items()}
args = train_network.setup_parser().parse_args(["--dataset_config", dataset_toml])
generator = config_util.BlueprintGenerator(config_util.ConfigSanitizer(True, True, False, True))
blueprint = generator.generate(config_util.load_user_config(dataset_toml), args)
group, _ = config_util.generate_dataset_group_by_blueprint(blueprint.dataset_group)
trained = {k.rsplit("/", 1)[-1]: i.caption for d in group.datasets for k, i in d.image_data.items()}
print("RESULT " + json.dumps({"prompts": prompts, "captions": trained}))
"""


def caption_project(root: Path) -> Path:
    folder = root / "images" / "1_a"
    folder.mkdir(parents=True)
    for stem, data in CAPTIONS.items():
        Image.new("RGB", (64, 64), (40, 90, 200)).save(folder / f"{stem}.png")
        (folder / f"{stem}.txt").write_bytes(data)
    toml = root / "dataset.toml"
    toml.write_text(
        '[general]\ncaption_extension = ".txt"\n[[datasets]]\nresolution = 64\nbatch_size = 1\n'
        f'[[datasets.subsets]]\nimage_dir = "{folder}"\nnum_repeats = 1\nclass_tokens = "a"\n',
        encoding="utf-8",
    )
    return toml


@pytest.fixture(scope="module")
def read_by_sd_scripts(tmp_path_factory, kohya_dir, kohya_python) -> dict:
    root = tmp_path_factory.mktemp("edges")
    files = {}
    for i, text in enumerate(FILE_NAMING):  # as the pack wrote them before it checked
        files[f"refused{i}"] = root / f"refused{i}.txt"
        files[f"refused{i}"].write_text("\n".join(sample_prompts.lines(text)) + "\n", encoding="utf-8")
    files["written"] = root / "prompts.txt"
    files["written"].write_text(command.sample_prompts_text(TrainOptions(sample_prompts=WRITTEN)), "utf-8")
    toml = caption_project(root / "project")
    scripts = kohya_dir if (kohya_dir / "train_network.py").is_file() else kohya_dir / "sd-scripts"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONIOENCODING="utf-8")
    paths = json.dumps({k: str(v) for k, v in files.items()})
    proc = subprocess.run(
        [str(kohya_python), "-c", READER, paths, str(toml)],
        cwd=scripts,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT ") :])
    result["root"] = root
    return result


def test_every_prompt_the_pack_refuses_gives_sd_scripts_a_file_to_open(read_by_sd_scripts):
    for i, text in enumerate(FILE_NAMING):
        read = read_by_sd_scripts["prompts"][f"refused{i}"]
        assert any("controlnet_image" in p for p in read), (text, read)


def test_the_prompts_the_pack_writes_are_read_as_written_with_no_file(read_by_sd_scripts):
    read = read_by_sd_scripts["prompts"]["written"]
    ours = sample_prompts.lines(WRITTEN)
    assert [p["prompt"] for p in read] == [line.split(" --")[0] for line in ours]
    assert not any("controlnet_image" in p for p in read)
    assert [p["negative_prompt"] for p in read if "negative_prompt" in p] == ["cnn"]


def test_keywords_are_the_tags_of_the_caption_sd_scripts_trains(read_by_sd_scripts):
    scan = dataset.scan_project(read_by_sd_scripts["root"] / "project")
    (subset,) = scan.subsets
    trained = read_by_sd_scripts["captions"]
    assert sorted(trained) == sorted(f"{stem}.png" for stem in CAPTIONS)
    for stem in CAPTIONS:
        ours = {tag for tag, _n in captions.keywords([subset.caption_texts[f"{stem}.txt"]])}
        theirs = {t.strip() for t in trained[f"{stem}.png"].lstrip("\ufeff").split(",") if t.strip()}
        assert ours == theirs, stem
