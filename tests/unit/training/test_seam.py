"""The seam between the one training flow and its trainers: sd-scripts builds a one-step Job whose
files are the run folder's, train.py writes and records whatever Job it is handed, `--print-command`
prints the Job whole, and nothing outside training/backends/ asks which trainer or family it runs."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from lora_workbench import cli
from lora_workbench.dataset import dataset_toml
from lora_workbench.errors import PathNotAllowed
from lora_workbench.training import backends, train
from lora_workbench.training.backends.sd_scripts import SD_SCRIPTS
from lora_workbench.training.job import Job, ParserEntry, Step
from lora_workbench.training.options import TrainOptions
from tests.unit import train_fakes as fakes

TRAINING = Path(train.__file__).parent


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(tmp_path / "none.json"))
    fakes.make_kohya(tmp_path, monkeypatch)
    for var in (
        "FAKE_SD_FAIL",
        "FAKE_SD_NO_FILE",
        "FAKE_SD_SLEEP",
        "FAKE_SD_CHILD_PIDFILE",
        "FAKE_SD_LAUNCHES",
    ):
        monkeypatch.delenv(var, raising=False)
    project = fakes.make_project(tmp_path)
    ckpt = fakes.write_checkpoint(tmp_path / "models" / "sd15.safetensors", fakes.sd1_tensors())
    return project, ckpt


def spec(**kw) -> TrainOptions:
    base = dict(
        epochs=2, width=64, height=64, network_dim=4, network_alpha=4, device="cpu", launcher="python"
    )
    return TrainOptions(**{**base, **kw})


def two_step_job(tmp_path) -> Job:
    cache = Step(
        "cache_latents",
        "Caching latents",
        ("python", "cache.py", "--dataset_config", "/p/run/dataset.toml"),
        "/opt/musubi",
        "count",
        reuse_key="k1",
        reuse_marker="/p/cache/latents.key",
    )
    train_step = Step(
        "train", "Training", ("python", "train.py", "--config_file", "it's.toml"), "/opt/musubi dir"
    )
    files = {"config.toml": "[model]\ndit = 'x'\n", "dataset.toml": "[general]\nresolution = [64, 64]\n"}
    return Job(
        "musubi-tuner",
        (cache, train_step),
        files,
        str(tmp_path),
        "w",
        "w.safetensors",
        4,
        "cpu",
        "no",
        "train.py",
    )


# --------------------------------------------------------------------------- Job.display
def test_display_shows_every_step_with_its_folder_and_every_file_whole(tmp_path):
    text = two_step_job(tmp_path).display()
    assert "# step 1/2: Caching latents (cache_latents)" in text and "# step 2/2: Training (train)" in text
    assert "# skipped while /p/cache/latents.key holds k1" in text
    assert "cd /opt/musubi\npython cache.py --dataset_config /p/run/dataset.toml" in text
    assert "cd '/opt/musubi dir'\npython train.py --config_file 'it'\"'\"'s.toml'" in text  # shell-quoted
    assert f"# ---- {tmp_path / 'config.toml'} ----\n[model]\ndit = 'x'\n" in text
    assert f"# ---- {tmp_path / 'dataset.toml'} ----\n[general]\nresolution = [64, 64]\n" in text
    assert text.index("step 2/2") < text.index("config.toml ----")


# --------------------------------------------------------------------------- the sd-scripts Job
def test_sd_scripts_builds_one_train_step_and_the_run_folders_files(setup):
    project, ckpt = setup
    p = train.plan(
        spec(sample_prompts="a cat", show_samples=True), dataset_toml.load_project_dataset(project), ckpt
    )
    job = p.job
    assert job.backend == "sd-scripts" and p.prepared.backend is SD_SCRIPTS
    assert [s.name for s in job.steps] == ["train"] and job.train_step.phase == "Training"
    assert job.train_step.parser == ParserEntry("train_network", ("setup_parser",))
    assert job.train_step.argv[-2:] == ("--config_file", str(p.run_dir / "config.toml"))
    assert set(job.files) == {"config.toml", "dataset.toml", "prompts.txt"}
    assert job.files["config.toml"].startswith("# sd-scripts train_network.py config for p1")
    assert "Run it again with: " in job.files["config.toml"] and "[saving]" in job.files["config.toml"]
    assert job.files["dataset.toml"] == (project / "dataset.toml").read_text(encoding="utf-8")
    assert job.files["prompts.txt"].startswith("a cat --w 64 --h 64")
    assert job.final_path == str(p.run_dir / "p1.safetensors") and job.total_steps == 8


def test_a_plan_without_samples_has_no_prompts_file_and_a_patched_dataset_copy(setup):
    project, ckpt = setup
    p = train.plan(spec(width=128, height=128), dataset_toml.load_project_dataset(project), ckpt)
    copy = p.job.files["dataset.toml"]
    assert "prompts.txt" not in p.job.files
    assert copy.startswith(
        f"# Copy of {project / 'dataset.toml'} for this run; the trainer set: resolution=[128, 128]"
    )
    assert dataset_toml.tomllib.loads(copy)["datasets"][0]["resolution"] == [128, 128]


def test_the_sd_scripts_run_cache_key_is_the_one_from_before_there_were_two_trainers(setup):
    project, ckpt = setup
    ds = dataset_toml.load_project_dataset(project)
    prep = train.prepare(spec(), ds, ckpt)
    key = dict(script="train_network.py", device="cpu", files=prep.model_files)
    assert prep.fingerprint == train.fingerprint(prep.options, ds, str(ckpt), **key)  # runs keyed before
    assert train.fingerprint(prep.options, ds, str(ckpt), **key, trainer="musubi-tuner") != prep.fingerprint


def test_trainer_root_and_the_older_kohya_root_both_name_the_checkout(setup, tmp_path, monkeypatch):
    project, ckpt = setup
    ds = dataset_toml.load_project_dataset(project)
    root = tmp_path / "sd-scripts"
    monkeypatch.setenv("KOHYA_SS_PATH", str(tmp_path / "nowhere"))
    assert train.plan(spec(), ds, ckpt, trainer_root=root).install.scripts_dir == root
    assert train.plan(spec(), ds, ckpt, kohya_root=str(root)).install.scripts_dir == root


# --------------------------------------------------------------------------- records
def test_a_run_writes_the_jobs_files_every_step_and_a_record_naming_the_trainer(setup):
    project, ckpt = setup
    ds = dataset_toml.load_project_dataset(project)
    planned = train.plan(spec(), ds, ckpt)
    run = train.train(spec(), ds, ckpt)
    run_dir = Path(run.run_dir)
    assert run_dir == planned.run_dir
    for name, text in planned.job.files.items():
        assert (run_dir / name).read_text(encoding="utf-8") == text, name
    rec = json.loads((run_dir / "run.json").read_text())
    train_argv = list(planned.job.train_step.argv)
    assert (
        rec["backend"] == "sd-scripts"
        and rec["argv"] == train_argv
        and rec["cwd"] == planned.job.train_step.cwd
    )
    assert rec["steps"] == [{"name": "train", "phase": "Training", "argv": train_argv, "cwd": rec["cwd"]}]
    assert (
        run_dir / "command.txt"
    ).read_text() == f"# working directory: {rec['cwd']}\n{planned.job.train_step.display()}\n"
    assert run.status["phase"] == "Training"


def test_command_txt_lists_every_step_of_a_job_of_several(tmp_path):
    text = train.commands_text(two_step_job(tmp_path))
    assert text.splitlines() == [
        "# step 1/2: Caching latents (cache_latents)",
        "# working directory: /opt/musubi",
        "python cache.py --dataset_config /p/run/dataset.toml",
        "# step 2/2: Training (train)",
        "# working directory: /opt/musubi dir",
        "python train.py --config_file 'it'\"'\"'s.toml'",
    ]


def test_a_job_file_naming_another_place_is_refused(setup, tmp_path):
    project, ckpt = setup
    p = train.plan(spec(), dataset_toml.load_project_dataset(project), ckpt)
    p.run_dir.mkdir(parents=True)
    p.job = Job(**{**p.job.__dict__, "files": {"../escape.toml": "x"}})
    with pytest.raises(ValueError, match="plain name"):
        train.write_run_files(p)
    assert not (p.run_dir.parent / "escape.toml").exists()


# --------------------------------------------------------------------------- --print-command
def test_print_command_prints_every_step_and_the_files_a_run_then_writes(setup, capsys):
    project, ckpt = setup
    flags = ["--epochs", "2", "--width", "64", "--height", "64", "--network-dim", "4", "--network-alpha", "4"]
    flags += ["--device", "cpu", "--launcher", "python", "--sample-prompts", "a cat", "--show-samples"]
    assert cli.main(["train", str(project), "--base", str(ckpt), *flags, "--print-command"]) == 0
    printed = capsys.readouterr().out
    assert not (project / "output").exists()
    assert cli.main(["train", str(project), "--base", str(ckpt), *flags]) == 0
    run_dir = project / "output" / "p1-001"
    assert (
        "# step 1/1: Training (train)" in printed
        and f"cd {run_dir.parent.parent.parent / 'sd-scripts'}" in printed
    )
    for name in ("config.toml", "dataset.toml", "prompts.txt"):
        written = (run_dir / name).read_text(encoding="utf-8").rstrip("\n")
        assert f"# ---- {run_dir / name} ----\n{written}\n" in printed, name
    cmd = (run_dir / "command.txt").read_text().splitlines()[1]
    assert cmd in printed.splitlines()


# --------------------------------------------------------------------------- the guard
# Places allowed to ask which family or trainer they handle: none (the kohya_ss GUI import moved under
# backends/sd_scripts/, Lumina 2's nextdit_shift became recipe data). A comparison anywhere fails this test.
KNOWN: set[str] = set()
PACK = TRAINING.parent
# Outside the flow too: the backends own their families, and modelfiles/ tells families apart by what
# the files hold (data about files, not behaviour of a trainer).
OWNERS = (TRAINING / "backends", PACK / "modelfiles")


def _named_ids() -> set[str]:
    ids = {b.id for b in backends.backends()}
    for b in backends.backends():
        ids |= set(b.recipes())
    return ids | {"qwen_image", "wan", "z_image", "flux2", "flux_kontext", "hunyuan_video_1_5", "framepack"}


def _comparisons(path: Path, ids: set[str]) -> list[tuple[int, str, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.MatchValue):  # `case "wan":` asks as much as `== "wan"`
            sides = [node.value]
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            sides += [
                e for c in node.comparators if isinstance(c, (ast.Tuple, ast.List, ast.Set)) for e in c.elts
            ]
        else:
            continue
        for side in sides:
            if isinstance(side, ast.Constant) and side.value in ids:
                found.append((node.lineno, side.value, ast.unparse(node)))
    return found


def _asking(files, root: Path) -> list[str]:
    ids = _named_ids()
    found = []
    for path in sorted(files):
        for line, value, text in _comparisons(path, ids):
            if path.name not in KNOWN and f"{path.name}:{value}" not in KNOWN:
                found.append(f"{path.relative_to(root)}:{line}: {text}")
    return found


def test_no_module_of_the_flow_asks_which_trainer_or_family_it_runs():
    found = _asking(TRAINING.glob("*.py"), PACK)
    assert not found, "make these recipe data or move them under training/backends/:\n" + "\n".join(found)


def test_no_module_outside_the_backends_asks_which_trainer_or_family_it_handles():
    """The CLI, the dataset, the library, the settings and the nodes take what differs from the recipes
    (a Setting's families, a recipe's fields), never from an id compared in place."""
    nodes = PACK.parent / "nodes"
    files = [p for p in PACK.rglob("*.py") if not any(p.is_relative_to(o) for o in OWNERS)]
    found = _asking([*files, *nodes.rglob("*.py")], PACK.parent)
    assert not found, "make these recipe data or move them under training/backends/:\n" + "\n".join(found)


def test_the_guard_sees_a_comparison_written_either_way(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        'if backend.id == "sd-scripts" or "wan" != fam or arch in ("sdxl", "x"):\n    pass\n'
        'match fam:\n    case "flux2":\n        pass\n'
    )
    assert [v for _, v, _ in _comparisons(probe, {"sd-scripts", "wan", "sdxl", "flux2"})] == [
        "sd-scripts",
        "wan",
        "sdxl",
        "flux2",
    ]


# --------------------------------------------------------------------------- attacks
def test_a_workflow_may_not_cache_through_a_project_folder_linking_out_of_the_roots(roots, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    project = roots / "shared-project"
    project.mkdir()
    (project / "cache").symlink_to(outside, target_is_directory=True)
    job = two_step_job(project / "output" / "w-001")
    linked = Step(**{**job.steps[0].__dict__, "reuse_marker": str(project / "cache" / "latents.key")})
    job = Job(**{**job.__dict__, "steps": (linked, job.steps[1])})
    with pytest.raises(PathNotAllowed, match="Caching latents writes its cache there"):
        train.check_cache_folders(job, [str(roots)])
    train.check_cache_folders(job, None)  # the command line: the user's own links are theirs
    inside = Step(**{**linked.__dict__, "reuse_marker": str(project / "own-cache" / "latents.key")})
    train.check_cache_folders(Job(**{**job.__dict__, "steps": (inside,)}), [str(roots)])
    assert not list(outside.iterdir())


def test_a_video_dataset_for_an_image_model_is_refused_before_anything_runs(setup):
    """The plan refuses video subsets for a family whose recipe trains on images (SD 1.5 here), naming
    the subset and the trainers that take videos (the dataset engineer's check, wired into prepare)."""
    from dataclasses import replace as dc_replace

    from lora_workbench.errors import ValidationError

    project, ckpt = setup
    ds = dataset_toml.load_project_dataset(project)
    ds.subsets[0] = dc_replace(ds.subsets[0], kind="video", video_frames={"a.mp4": 33})
    with pytest.raises(
        ValidationError, match=r"video subset\(s\) .* trains on images: videos train with Wan"
    ):
        train.prepare(spec(), ds, ckpt)
