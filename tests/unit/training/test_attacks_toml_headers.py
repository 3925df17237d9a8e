"""Attack: a project folder whose name holds a line break must not inject sd-scripts arguments or an extra
subset into the run's config.toml or its dataset.toml copy. Both files are read back with tomllib and
with toml 0.10.2 (sd-scripts' parser); the run goes through the real runner and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import toml

from lora_workbench.cli import main
from lora_workbench.dataset import dataset_toml, prepare
from lora_workbench.dataset.dataset_toml import tomllib
from lora_workbench.training import train
from lora_workbench.training.options import TrainOptions
from tests.unit import train_fakes as fakes

NAMES = [
    "p\nlogging_dir = '/tmp/evil'",
    'p\r\nnetwork_module = "evil"',
    "p\n[[datasets]]\n[[datasets.subsets]]\nimage_dir = '/etc'\n#",
    "p'\n\"q\u2028x = 1",
]


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    fakes.make_kohya(tmp_path, monkeypatch)
    monkeypatch.setenv("FAKE_SD_LAUNCHES", str(tmp_path / "launches.txt"))
    for var in ("FAKE_SD_FAIL", "FAKE_SD_NO_FILE", "FAKE_SD_SLEEP", "FAKE_SD_CHILD_PIDFILE"):
        monkeypatch.delenv(var, raising=False)
    ckpt = fakes.write_checkpoint(tmp_path / "models" / "sd15.safetensors", fakes.sd1_tensors())
    return tmp_path, ckpt


def make_evil_project(root: Path, name: str) -> Path:
    project = fakes.make_project(root, name=name)
    (project / "dataset.toml").unlink()
    prepare.prepare_dataset(project, prepare.DatasetOptions(resolution=(64, 64)))  # our writer, our header
    return project


def read_both(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    return [tomllib.loads(text), toml.loads(text)]


def keys(parsed: dict) -> set[str]:
    return {f"{t}.{k}" for t, section in parsed.items() if isinstance(section, dict) for k in section} | {
        k for k, v in parsed.items() if not isinstance(v, dict)
    }


def assert_nothing_injected(run_dir: Path, project: Path, baseline: set[str]) -> None:
    """The config has exactly the keys a plainly named project gets; every path stays in the project;
    the dataset files hold one dataset with its one subset."""
    for parsed in read_both(run_dir / "config.toml"):
        assert keys(parsed) == baseline
        for section in parsed.values():
            for key, value in section.items() if isinstance(section, dict) else ():
                if isinstance(value, str) and "/tmp/evil" in value:
                    assert value.startswith(str(project)), (key, value)
    for parsed in read_both(run_dir / "dataset.toml") + read_both(project / "dataset.toml"):
        subsets = [s for d in parsed["datasets"] for s in d["subsets"]]
        assert len(parsed["datasets"]) == 1 and len(subsets) == 1
        assert subsets[0]["image_dir"] == str(project / "images" / "1_subject")


@pytest.fixture
def baseline(setup):
    root, ckpt = setup
    project = make_evil_project(root, "plain")
    spec = TrainOptions(
        epochs=1, width=128, height=128, network_dim=4, network_alpha=4, device="cpu", launcher="python"
    )
    run = train.train(spec, dataset_toml.load_project_dataset(project), ckpt)
    return keys(tomllib.loads((Path(run.run_dir) / "config.toml").read_text(encoding="utf-8")))


@pytest.mark.parametrize("name", NAMES, ids=range(len(NAMES)))
def test_a_newline_in_the_project_name_injects_nothing_into_the_run_files(setup, baseline, name):
    root, ckpt = setup
    project = make_evil_project(root, name)
    ds = dataset_toml.load_project_dataset(project)
    spec = TrainOptions(
        epochs=1, width=128, height=128, network_dim=4, network_alpha=4, device="cpu", launcher="python"
    )
    run = train.train(spec, ds, ckpt)  # 128 != 64: the dataset copy is patched and gets a header
    run_dir = Path(run.run_dir)
    assert (run_dir / "dataset.toml").read_text(encoding="utf-8").startswith("# Copy of ")
    assert_nothing_injected(run_dir, project, baseline)
    for line in (run_dir / "config.toml").read_text(encoding="utf-8").splitlines():
        assert line.startswith("#") or line == "" or line.startswith("[") or " = " in line


def test_the_cli_trains_a_project_with_a_newline_in_its_name_without_injection(setup, baseline, capsys):
    root, ckpt = setup
    project = make_evil_project(root, NAMES[0])
    argv = ["train", str(project), "--base", str(ckpt), "--epochs", "1", "--width", "128", "--height", "128"]
    rc = main([*argv, "--network-dim", "4", "--device", "cpu", "--launcher", "python"])
    assert rc == 0, capsys.readouterr().err
    run_dir = next((project / "output").iterdir())
    assert_nothing_injected(run_dir, project, baseline)
