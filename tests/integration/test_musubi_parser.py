"""Ask musubi-tuner itself whether our Jobs mean what we meant: no weights, no training.

For every family (and the Wan / Qwen-Image / FLUX.2 / HunyuanVideo 1.5 variants) the musubi backend
builds a Job against a fake model path; then a probe in musubi-tuner's own Python (cwd = the checkout)
builds each step's real argument parser from its `ParserEntry`, parses the step's argv, reads the train
step's config TOML the way `read_config_from_file` does (and reports any key the parser does not know:
musubi would silently keep it), and runs the dataset config through musubi's ConfigSanitizer and
BlueprintGenerator. Expect 0 problems; a table family x step -> ok is printed.

Needs MUSUBI_TUNER_PATH (a checkout) and MUSUBI_PYTHON (its environment); skips saying so otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from lora_workbench.datatypes import DatasetSubset, LoraDataset
from lora_workbench.modelfiles.detect import ModelInfo
from lora_workbench.training.backends import for_family
from lora_workbench.training.backends.base import Install
from lora_workbench.training.command import Target
from lora_workbench.training.options import TrainOptions

MARK = "MUSUBI-PARSER-RESULT:"
CASES = [
    ("qwen_image", "original", {}),
    ("qwen_image", "", {"model_version": "edit-2509"}),
    ("wan", "t2v-1.3B", {}),
    ("wan", "t2v-1.3B", {"target_frames": "1,25", "frame_extraction": "uniform", "frame_sample": 2}),
    ("wan", "t2v-14B", {"fp8_base": True, "fp8_scaled": True, "blocks_to_swap": 20}),
    ("wan", "i2v-14B", {}),
    ("wan", "t2v-A14B", {"min_timestep": 875}),
    ("wan", "i2v-A14B", {"fp8_text_encoder": True, "vae_cache_cpu": True}),
    ("z_image", "", {"weighting_scheme": "logit_normal"}),
    ("flux2", "dev", {}),
    ("flux2", "klein-4b", {"fp8_text_encoder": True}),
    ("flux2", "klein-base-9b", {}),
    ("flux_kontext", "", {"guidance_scale": 2.5}),
    ("hunyuan_video_1_5", "t2v", {}),
    ("hunyuan_video_1_5", "i2v", {"timestep_sampling": "sigmoid"}),
    ("framepack", "", {"optimizer": "Adafactor", "lr_scheduler": "adafactor"}),
]

# Runs in musubi's Python: cases on stdin, one JSON line per case on stdout after MARK.
PROBE = r"""
import importlib, json, os, sys
import torch
torch.cuda.current_device = lambda: 0  # wan/modules/t5.py calls it at import (a default argument)
sys.argv = ["probe"]
cases = json.loads(sys.stdin.read())
root = os.getcwd()

def builder(module, name):
    obj = module
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj

def parse(case):
    for p in case["sys_path"]:
        sys.path.insert(0, os.path.join(root, p))
    module = importlib.import_module(case["module"])
    parser = None
    for name in case["builders"]:
        fn = builder(module, name)
        if name.endswith("parse_args"):  # convert_lora.parse_args() builds and parses sys.argv
            sys.argv = ["x", *case["argv"]]
            return None, fn()
        made = fn(parser) if parser is not None else fn()
        parser = made if made is not None else parser
    return parser, parser.parse_args(case["argv"])

def check_config(case, parser, args, out):
    import toml
    from musubi_tuner.training.parser_common import read_config_from_file
    known = {a.dest for a in parser._actions}
    config = toml.load(getattr(args, case["config_option"]))
    for section, values in config.items():
        for key in values if isinstance(values, dict) else {section: values}:
            if key not in known:
                out["problems"].append(f"config key {key} is not an option of {case['module']}")
    sys.argv = ["x", *case["argv"]]  # read_config_from_file parses the command line again, over the config
    args = read_config_from_file(args, parser)
    out["values"] = {k: str(getattr(args, k, None)) for k in ("dit", "network_module", "timestep_sampling",
                     "mixed_precision", "max_train_steps", "task", "model_version", "fp8_base")}
    return args

def check_dataset(path, args, out):
    from musubi_tuner.dataset import config_utils
    from musubi_tuner.dataset.config_utils import BlueprintGenerator, ConfigSanitizer
    user_config = config_utils.load_user_config(path)
    blueprint = BlueprintGenerator(ConfigSanitizer()).generate(user_config, args, architecture="wan")
    out["kinds"] = ["image" if d.is_image_dataset else "video" for d in blueprint.dataset_group.datasets]

def check_pairs(case, args, out):
    # musubi's own dataset classes glob the images and match the control images (as caching would)
    from musubi_tuner.dataset import config_utils
    from musubi_tuner.dataset.config_utils import BlueprintGenerator, ConfigSanitizer
    user_config = config_utils.load_user_config(case["dataset"])
    blueprint = BlueprintGenerator(ConfigSanitizer()).generate(user_config, args, architecture=case["architecture"])
    group = config_utils.generate_dataset_group_by_blueprint(blueprint.dataset_group)
    out["pairs"] = [sorted(len(p) for p in d.datasource.control_paths.values()) for d in group.datasets]

for case in cases:
    out = {"id": case["id"], "problems": []}
    try:
        parser, args = parse(case)
        if case["config_option"]:
            args = check_config(case, parser, args, out)
        if case["dataset"]:
            check_dataset(case["dataset"], args, out)
        if case.get("architecture"):
            check_pairs(case, args, out)
    except BaseException as exc:  # SystemExit from argparse too (its message went to stderr)
        out["problems"].append(f"{type(exc).__name__}: {exc}"[:1500])
        import traceback
        traceback.print_exc()
    print("MUSUBI-PARSER-RESULT:" + json.dumps(out), flush=True)
"""


@pytest.fixture(scope="module")
def musubi() -> Install:
    root, python = os.environ.get("MUSUBI_TUNER_PATH"), os.environ.get("MUSUBI_PYTHON")
    if not root or not python:
        pytest.skip(
            "MUSUBI_TUNER_PATH and MUSUBI_PYTHON are not set: point them at a musubi-tuner checkout and its Python"
        )
    if not (Path(root) / "src/musubi_tuner/wan_train_network.py").is_file():
        pytest.skip(f"MUSUBI_TUNER_PATH={root} is not a musubi-tuner checkout")
    return Install(Path(root), Path(root), Path(python))


def _dataset(tmp_path: Path, pairs: bool, video: bool = False) -> LoraDataset:
    project = tmp_path / "project"
    images = project / "images" / "2_sub ject'\"]"
    images.mkdir(parents=True, exist_ok=True)
    subsets = [DatasetSubset("sub ject'\"]", str(images), 2, 2)]
    if pairs:  # FLUX.1 Kontext and Qwen-Image-Edit learn from image pairs
        subsets[0].control_dir, subsets[0].control_count = str(images / "control"), 2
    subsets[0].kind = "video" if video else "image"
    return LoraDataset(
        str(project), str(project / "dataset.toml"), (512, 512), True, 1, subsets, 4, 4, epochs=1
    )


def _job(tmp_path: Path, install: Install, family: str, variant: str, values: dict):
    backend, recipe = for_family(family)
    files = {f.option: str(tmp_path / "models" / f.folder / f.example) for f in recipe.model_files}
    model = ModelInfo(
        str(tmp_path / "models/diffusion_models/dit.safetensors"), family, "test", variant=variant
    )
    run = tmp_path / "runs" / f"{family}-{variant or 'default'}-{'-'.join(sorted(values))}"
    device = "gpu" if any(k in values for k in ("fp8_base", "fp8_text_encoder")) else "cpu"
    pairs = family == "flux_kontext" or values.get("model_version", "").startswith("edit")
    target = Target(
        _dataset(tmp_path, pairs, video="target_frames" in values),
        model,
        install,
        device,
        run,
        logging_dir=tmp_path / "logs",
        model_files=files,
    )
    opts = TrainOptions.from_values({"sample_prompts": "a photo", "device": device, **values})
    job = backend.build(opts, target)
    run.mkdir(parents=True, exist_ok=True)
    for name, text in job.files.items():
        (run / name).write_text(text, encoding="utf-8")
    return job, run


def _cases(job, run: Path, label: str) -> list[dict]:
    cases = []
    for step in job.steps:
        if step.parser is None:
            continue
        script = next(i for i, a in enumerate(step.argv) if a.endswith(".py"))
        cases.append(
            {
                "id": f"{label}:{step.name}",
                "module": step.parser.module,
                "builders": list(step.parser.builders),
                "sys_path": list(step.parser.sys_path),
                "argv": list(step.argv[script + 1 :]),
                "config_option": step.parser.config_option,
                "dataset": str(run / "dataset.toml") if step.name != "convert" else "",
            }
        )
    return cases


def _probe(install: Install, cases: list[dict]) -> dict[str, dict]:
    proc = subprocess.run(
        [str(install.python), "-c", PROBE],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        cwd=install.root,
        timeout=900,
    )
    results = [json.loads(line[len(MARK) :]) for line in proc.stdout.splitlines() if line.startswith(MARK)]
    assert results, f"the probe printed nothing: {proc.stderr[-3000:]}"
    return {r["id"]: r for r in results}


def test_every_family_job_is_taken_by_musubis_own_parsers(tmp_path, musubi):
    cases, labels = [], []
    for family, variant, values in CASES:
        label = f"{family}/{variant or values.get('model_version', 'default')}"
        label += "/video" if "target_frames" in values else ""
        job, run = _job(tmp_path, musubi, family, variant, values)
        cases += _cases(job, run, label)
        labels.append(label)
    results = _probe(musubi, cases)
    rows, problems = [], []
    for case in cases:
        result = results.get(case["id"], {"problems": ["no result"]})
        seen = result.get("values", {})
        shown = " ".join(
            f"{k}={seen[k]}" for k in ("task", "model_version", "timestep_sampling") if k in seen
        )
        rows.append(f"{case['id']:<48} {'ok' if not result['problems'] else 'PROBLEM'} {shown}")
        problems += [f"{case['id']}: {p}" for p in result["problems"]]
        kind = "video" if "/video:" in case["id"] else "image"
        if case["dataset"] and result.get("kinds") != [kind]:
            problems.append(f"{case['id']}: musubi read the dataset as {result.get('kinds')}, not [{kind!r}]")
    print("\n".join(["family/variant:step                              result", *rows]))
    assert not problems, "\n".join(problems)


def _paired_project(tmp_path: Path, controls: dict[str, list[str]]) -> LoraDataset:
    """A real project: images/2_pair with a PNG and caption per stem, control/ with the named PNGs."""
    from PIL import Image

    from lora_workbench.dataset import prepare

    project = tmp_path / "pairs"
    folder = project / "images" / "2_pair"
    (folder / "control").mkdir(parents=True)
    for stem, names in controls.items():
        Image.new("RGB", (64, 64), (200, 10, 10)).save(folder / f"{stem}.png")
        (folder / f"{stem}.txt").write_text("make it red", encoding="utf-8")
        for name in names:
            Image.new("RGB", (64, 64), (10, 10, 200)).save(folder / "control" / name)
    options = prepare.DatasetOptions(resolution=(64, 64), enable_bucket=False, wrong_size="error")
    dataset, _ = prepare.prepare_dataset(project, options)
    return dataset


@pytest.mark.parametrize(
    "family, values, architecture, controls, expected",
    [
        ("flux_kontext", {}, "fk", {"a": ["a.png"], "b": ["b.jpg"]}, [1, 1]),
        ("qwen_image", {"model_version": "edit"}, "qie", {"a": ["a.png"], "b": ["b.png"]}, [1, 1]),
        (
            "qwen_image",
            {"model_version": "edit-2509"},
            "qie",
            {"a": ["a_0.png", "a_1.png"], "b": ["b_0.png", "b_1.png", "b_2.png"]},
            [2, 3],
        ),
    ],
)
def test_image_pairs_are_read_by_musubis_own_dataset_classes(
    tmp_path, musubi, family, values, architecture, controls, expected
):
    """FLUX.1 Kontext and Qwen-Image-Edit: ConfigSanitizer takes the control_directory and musubi's
    own datasource matches every training image to its control image(s)."""
    dataset = _paired_project(tmp_path, controls)
    backend, recipe = for_family(family)
    files = {f.option: str(tmp_path / "models" / f.folder / f.example) for f in recipe.model_files}
    model = ModelInfo(str(tmp_path / "models/diffusion_models/dit.safetensors"), family, "test", variant="")
    run = tmp_path / "runs" / family
    target = Target(dataset, model, musubi, "cpu", run, logging_dir=tmp_path / "logs", model_files=files)
    job = backend.build(TrainOptions.from_values({"device": "cpu", **values}), target)
    run.mkdir(parents=True, exist_ok=True)
    for name, text in job.files.items():
        (run / name).write_text(text, encoding="utf-8")
    cases = [{**c, "architecture": architecture} for c in _cases(job, run, family) if c["dataset"]]
    results = _probe(musubi, cases)
    for case in cases:
        result = results[case["id"]]
        print(case["id"], "ok" if not result["problems"] else result["problems"], result.get("pairs"))
        assert not result["problems"], result["problems"]
        assert result["pairs"] == [expected], result


def test_the_probe_reports_a_config_key_musubi_does_not_know(tmp_path, musubi):
    """musubi keeps an unknown config key silently; the probe must not (else the check above proves nothing)."""
    job, run = _job(tmp_path, musubi, "z_image", "", {})
    config = run / "config.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[extra]\nunet_lr = 0.1\n", encoding="utf-8")
    train = [c for c in _cases(job, run, "z_image") if c["id"].endswith(":train")]
    (result,) = _probe(musubi, train).values()
    assert any("unet_lr" in p for p in result["problems"]), result
