"""Every training setting, through sd-scripts' own parser and checks (no weights, no training): for
train_network.py (SD 1.x/2.x) and sdxl_train_network.py (SDXL), the default command and one command
per setting with a non-default value are parsed by the script's setup_parser() + read_config_from_file,
checked by its dataset blueprint and assert_extra_args, and the accelerate options by accelerate's
own parser. A wrongly spelled or wrongly placed option fails here (see sdscripts_argcheck.py)."""

from __future__ import annotations

import os

import pytest

from lora_workbench import toml_writer
from lora_workbench.dataset.dataset_toml import dataset_from_toml
from lora_workbench.modelfiles.detect import detect_model
from lora_workbench.training import kohya
from lora_workbench.training.backends.sd_scripts.dataset_config import write_dataset_copy
from lora_workbench.training.command import Target, build_command, effective_options, kv_argv
from lora_workbench.training.options import TrainOptions
from lora_workbench.training.settings import SETTING, SETTINGS, Where
from lora_workbench.training.validation import validate
from tests.unit import train_fakes as fakes

from . import sdscripts_argcheck as argcheck

pytestmark = pytest.mark.integration

SCRIPTS = {"sd1": "train_network.py", "sd2": "train_network.py", "sdxl": "sdxl_train_network.py"}
TENSORS = {"sd1": fakes.sd1_tensors, "sd2": fakes.sd2_tensors, "sdxl": fakes.sdxl_tensors}


def setting_cases(family: str) -> list[tuple[str, dict]]:
    """The defaults, then one case per setting that applies to the family (its example value)."""
    cases = [("defaults", {})]
    for s in SETTINGS:
        if family in s.families:
            cases.append((f"{s.name}={s.example_value()!r}", {**s.example_with, s.name: s.example_value()}))
    return cases


def expected(opts) -> dict:
    """What each table-driven setting must become in sd-scripts' namespace."""
    out = {}
    for s in SETTINGS:
        value = getattr(opts, s.name)
        if s.where is Where.CONFIG and s.emit != "custom" and value != s.default:
            if s.emit == "if_set" and not value:  # not written: sd-scripts keeps its own default (off)
                continue
            out[s.sd_name] = True if s.emit == "flag" else value
    return out


def dataset_expected(opts) -> dict:
    """What the caption and augmentation settings must become in every subset sd-scripts builds."""
    return {
        s.sd_name: getattr(opts, s.name)
        for s in SETTINGS
        if s.where is Where.DATASET and s.section == "subset_defaults" and getattr(opts, s.name) != s.default
    }


def build_case(tmp_path, family: str, name: str, values: dict, ds, install, device=None) -> argcheck.Case:
    opts = effective_options(TrainOptions.from_values(values), ds)
    validate(opts)
    ckpt = fakes.write_checkpoint(tmp_path / f"{family}.safetensors", TENSORS[family]())
    run_dir = tmp_path / "runs" / f"{family}-{abs(hash(name))}"
    run_dir.mkdir(parents=True)
    device = device or (opts.device if opts.device != "auto" else "cpu")
    if any(k in values for k in ("num_processes", "gpu_ids", "num_machines", "machine_rank")):
        device = "gpu"
    state = run_dir / "p1-000001-state" if opts.resume else None  # a resumed run names its state
    model = detect_model(ckpt, opts.model_type)
    target = Target(ds, model, install, device, run_dir, logging_dir=tmp_path / "logs", resume_state=state)
    cmd = build_command(opts, target)
    (run_dir / "config.toml").write_text(toml_writer.dumps(cmd.config), encoding="utf-8")
    write_dataset_copy(ds, cmd.dataset_patch, run_dir / "dataset.toml")
    if cmd.prompts:
        (run_dir / "prompts.txt").write_text(cmd.prompts, encoding="utf-8")
    return argcheck.Case(
        f"{family} {name}",
        cmd.argv,
        cmd.config,
        {**expected(opts), **kv_expected(opts)},
        dataset_expected(opts),
    )


def kv_expected(opts) -> dict:
    """network_args and optimizer_args travel on the argv (command.kv_argv): each pair one list item."""
    argv = kv_argv(opts)
    out = {}
    for flag in ("--network_args", "--optimizer_args"):
        if flag in argv:
            rest = argv[argv.index(flag) + 1 :]
            out[flag[2:]] = rest[: next((i for i, a in enumerate(rest) if a.startswith("--")), len(rest))]
    return out


def kohya_gui_presets() -> dict:
    from lora_workbench.training.backends.sd_scripts import kohya_gui

    folder = os.environ.get("KOHYA_SS_GUI_PATH")
    if not folder:
        pytest.skip("KOHYA_SS_GUI_PATH is not set: point it at a kohya_ss GUI checkout to check its presets")
    return kohya_gui.presets(folder)


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_every_setting_is_taken_by_sdscripts_as_meant(family, tmp_path, kohya_dir, kohya_python, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    monkeypatch.setenv("KOHYA_SS_PATH", str(kohya_dir))
    monkeypatch.setenv("KOHYA_PYTHON", str(kohya_python))
    install = kohya.find_install()
    project = fakes.make_project(tmp_path, images=4, size=64)
    ds = dataset_from_toml(project / "dataset.toml", project)
    # the trainer at 512x512 over the 64x64 dataset, as its defaults were before they became the dataset's
    # (buckets forced on need min_bucket_reso 256 <= the resolution)
    at_512 = {"width": 512, "height": 512}
    cases = [build_case(tmp_path, family, n, {**at_512, **v}, ds, install) for n, v in setting_cases(family)]
    results = argcheck.check(kohya_python, install.scripts_dir, cases)
    found = [p for case, res in zip(cases, results, strict=True) for p in argcheck.problems(case, res)]
    keys = {k for case in cases for k in case.keys()}
    print(
        f"\n{SCRIPTS[family]}: {len(cases)} commands, {len(keys)} distinct keys checked, {len(found)} problems"
    )
    assert not found, "\n".join(found)


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_key_value_args_with_commas_reach_sdscripts_whole(
    family, tmp_path, kohya_dir, kohya_python, monkeypatch
):
    """block_dims/block_alphas (25 values for SD, 23 for SDXL) and betas hold commas: they go on the argv
    and sd-scripts' parser must hand each pair over whole, after the config is read."""
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    monkeypatch.setenv("KOHYA_SS_PATH", str(kohya_dir))
    monkeypatch.setenv("KOHYA_PYTHON", str(kohya_python))
    install = kohya.find_install()
    project = fakes.make_project(tmp_path, images=2, size=64)
    ds = dataset_from_toml(project / "dataset.toml", project)
    n = 23 if family == "sdxl" else 25
    dims = ",".join(str(2 + i % 3) for i in range(n))
    values = {
        "network_type": "locon",
        "conv_dim": 4,
        "network_args": f"block_dims={dims} block_alphas={dims} down_lr_weight=sine+.5 loraplus_lr_ratio=4",
        "optimizer_args": "betas=0.9,0.99 weight_decay=0.02",
    }
    case = build_case(tmp_path, family, "kv commas", values, ds, install)
    assert "network_args" in case.expect and "optimizer_args" in case.expect
    (res,) = argcheck.check(kohya_python, install.scripts_dir, [case])
    found = argcheck.problems(case, res)
    print(f"\n{family}: network_args as sd-scripts parsed them: {res.values.get('network_args')}")
    assert not found, "\n".join(found)
    assert res.values["network_args"][2] == f"block_dims={dims}"
    assert res.values["optimizer_args"] == ["betas=0.9,0.99", "weight_decay=0.02"]


def test_a_misspelled_option_is_caught(tmp_path, kohya_dir, kohya_python, monkeypatch):
    """The checker itself: an unknown key and a value sd-scripts reads differently are reported."""
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    monkeypatch.setenv("KOHYA_SS_PATH", str(kohya_dir))
    monkeypatch.setenv("KOHYA_PYTHON", str(kohya_python))
    install = kohya.find_install()
    project = fakes.make_project(tmp_path, images=2, size=64)
    ds = dataset_from_toml(project / "dataset.toml", project)
    case = build_case(tmp_path, "sd1", "bad", {}, ds, install)
    case.config["network"]["network_dimm"] = 4  # a typo sd-scripts would silently ignore
    case.expect = {"network_dim": 99}  # a value it does not hold
    cfg = next(a for a in case.argv if a.endswith("config.toml"))
    with open(cfg, "w", encoding="utf-8") as f:
        f.write(toml_writer.dumps(case.config))
    (res,) = argcheck.check(kohya_python, install.scripts_dir, [case])
    found = argcheck.problems(case, res)
    assert any("no option 'network_dimm'" in p for p in found), found
    dim = SETTING["network_dim"].default
    assert any(f"network_dim parsed as {dim}" in p for p in found), found
