"""The managed trainer's install: steps with stamps, a second install that does nothing, kill points
that converge, failures that leave the trainer in use working, the lock, progress and cancel."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from lora_workbench import paths
from lora_workbench.trainer_env import install as inst
from lora_workbench.trainer_env.gitsrc import SourceError
from lora_workbench.trainer_env.layout import Layout, read_current
from tests.unit.trainer_env.trainer_fakes import (
    FakeTools,
    Killed,
    commit_change,
    make_comfyui,
    make_repo,
    request,
)


@pytest.fixture
def layout(tmp_path, monkeypatch) -> Layout:
    monkeypatch.setenv("LORA_WORKBENCH_HOME", str(tmp_path / "home"))
    for var in ("KOHYA_SS_PATH", "KOHYA_PYTHON", "LORA_WORKBENCH_TOKENIZER_CACHE"):
        monkeypatch.delenv(var, raising=False)
    return Layout.default()


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "sd-scripts-src")


def test_an_install_clones_builds_checks_and_records_the_trainer_in_use(layout, repo):
    src, commit = repo
    tools = FakeTools()
    report = inst.install(request(src, commit), layout=layout, runner=tools)
    assert report.changed and report.steps_run == ["clone", "venv", "pip", "tokenizers", "check", "switch"]
    current = read_current(layout)
    assert current.build.name == report.build and current.record["commit"] == commit
    assert (current.src / "train_network.py").is_file()
    assert paths.kohya_ss_path() == current.src and paths.kohya_python() == current.python


def test_a_second_install_with_nothing_changed_runs_no_tool(layout, repo):
    src, commit = repo
    inst.install(request(src, commit), layout=layout, runner=FakeTools())
    again = FakeTools()
    report = inst.install(request(src, commit), layout=layout, runner=again)
    assert not report.changed and report.steps_run == [] and again.calls == []


def test_pip_gets_torch_as_a_constraint_and_the_generated_requirements(layout, repo):
    src, commit = repo
    tools = FakeTools()
    report = inst.install(request(src, commit), layout=layout, runner=tools)
    pip = next(argv for kind, argv in tools.calls if kind == "pip")
    work = Path(report.src).parent / "build"
    assert pip[pip.index("-c") + 1] == str(work / "constraints.txt")
    assert "--disable-pip-version-check" in pip and "torch==2.14.1" in pip
    assert (work / "constraints.txt").read_text() == "torch==2.14.1\ntorchvision==0.29.1\n"
    reqs = (work / "requirements.txt").read_text()
    assert f"-e {report.src}" in reqs and "bitsandbytes" not in reqs


KILL_POINTS = [
    "git-after",
    "venv-before",
    "venv-after",
    "pip-before",
    "pip-after",
    "check-after",
    "help-after",
]


@pytest.mark.parametrize("kill", KILL_POINTS)
def test_an_install_killed_at_any_point_converges_when_run_again(layout, repo, kill):
    src, commit = repo
    with pytest.raises(Killed):
        inst.install(request(src, commit), layout=layout, runner=FakeTools(kill=kill))
    assert read_current(layout) is None  # nothing is recorded before the checks passed
    report = inst.install(request(src, commit), layout=layout, runner=FakeTools())
    assert report.changed and read_current(layout).build.name == report.build
    assert inst.install(request(src, commit), layout=layout, runner=FakeTools()).changed is False


def test_a_kill_after_pip_does_not_repeat_the_clone_or_the_venv(layout, repo):
    src, commit = repo
    with pytest.raises(Killed):
        inst.install(request(src, commit), layout=layout, runner=FakeTools(kill="check-before"))
    tools = FakeTools()
    inst.install(request(src, commit), layout=layout, runner=tools)
    assert tools.kinds() == ["check", "help"]


def test_a_pip_that_stopped_half_way_is_run_again_in_a_fresh_venv(layout, repo):
    src, commit = repo
    with pytest.raises(Killed):
        inst.install(request(src, commit), layout=layout, runner=FakeTools(kill="pip-after"))
    tools = FakeTools()
    inst.install(request(src, commit), layout=layout, runner=tools)
    assert tools.kinds() == ["venv", "pip", "check", "help"]


def test_a_step_done_again_makes_every_later_step_run_again(layout, repo):
    src, commit = repo
    report = inst.install(request(src, commit), layout=layout, runner=FakeTools())
    (Path(report.src).parent / "build" / "venv.stamp").unlink()
    tools = FakeTools()
    again = inst.install(request(src, commit), layout=layout, runner=tools)
    assert tools.kinds() == ["venv", "pip", "check", "help"]
    assert again.steps_run == ["venv", "pip", "tokenizers", "check", "switch"]


def test_a_broken_requirement_is_a_sentence_quoting_pip_and_keeps_the_trainer_in_use(layout, repo):
    src, commit = repo
    first = inst.install(request(src, commit), layout=layout, runner=FakeTools())
    broken = commit_change(src, "requirements.txt", "accelerate==1.6.0\nno-such-package==9.9\n-e .\n")
    with pytest.raises(inst.TrainerInstallError) as caught:
        inst.install(request(src, broken), layout=layout, runner=FakeTools(pip_fails=True))
    text = str(caught.value)
    assert '"ERROR: Could not find a version that satisfies the requirement no-such-package==9.9' in text
    assert f"The trainer in use ({first.build}) is unchanged" in text and "pip.log" in text
    assert read_current(layout).build.name == first.build
    assert paths.kohya_ss_path() == Path(first.src)


def test_a_build_that_fails_its_check_is_never_recorded(layout, repo):
    src, commit = repo
    with pytest.raises(
        inst.TrainerInstallError, match="does not work: ModuleNotFoundError: No module named 'accelerate'"
    ):
        inst.install(request(src, commit), layout=layout, runner=FakeTools(check_fails=True))
    assert read_current(layout) is None and paths.kohya_python() is None


def test_an_update_is_built_beside_and_switched_to_after_its_check(layout, repo):
    src, commit = repo
    first = inst.install(request(src, commit), layout=layout, runner=FakeTools())
    newer = commit_change(src, "train_network.py", "print('usage: newer')\n")
    report = inst.update(newer, layout=layout, runner=FakeTools())
    current = read_current(layout)
    assert current.build.name == report.build != first.build
    assert current.record["commit"] == newer and current.record["previous"] == first.build
    assert Path(first.src).is_dir()  # the one before stays, to go back to


def test_an_update_keeps_only_the_trainer_in_use_and_the_one_before(layout, repo):
    src, commit = repo
    builds = [inst.install(request(src, commit), layout=layout, runner=FakeTools()).build]
    for n in range(2):
        ref = commit_change(src, "train_network.py", f"print('usage: {n}')\n")
        builds.append(inst.update(ref, layout=layout, runner=FakeTools()).build)
    left = sorted(p.name for p in layout.trainer_dir.iterdir() if p.name in builds)
    assert left == sorted(builds[1:])


def test_update_without_a_managed_trainer_says_to_install_first(layout):
    with pytest.raises(inst.TrainerInstallError, match="run `lora-workbench trainer install` first"):
        inst.update(layout=layout, runner=FakeTools())


def test_an_unknown_commit_is_a_sentence_naming_it(layout, repo):
    src, _ = repo
    with pytest.raises(SourceError, match="has no commit 'deadbeef'"):
        inst.install(request(src, "deadbeef"), layout=layout, runner=FakeTools())


def test_a_missing_interpreter_is_a_sentence(layout, repo):
    src, commit = repo
    req = request(src, commit)
    req = type(req)(**{**req.__dict__, "python": "/no/such/python3"})
    with pytest.raises(inst.TrainerInstallError, match="The Python '/no/such/python3' does not exist"):
        inst.install(req, layout=layout, runner=FakeTools())


def test_progress_reports_each_step_and_pips_lines_with_the_time_so_far(layout, repo):
    src, commit = repo
    seen = []
    inst.install(request(src, commit), layout=layout, runner=FakeTools(), progress=seen.append)
    assert [p.step for p in seen if not p.line] == ["clone", "venv", "pip", "tokenizers", "check", "switch"]
    assert any(p.step == "pip" and p.line == "Collecting torch==2.14.1" for p in seen)
    assert all(p.total == 6 and p.elapsed >= 0 for p in seen)


def test_cancel_stops_the_install_and_a_new_one_continues(layout, repo):
    src, commit = repo
    cancel = threading.Event()

    def progress(p):
        if p.step == "pip":
            cancel.set()

    with pytest.raises(inst.InstallCancelled, match="cancelled"):
        inst.install(
            request(src, commit), layout=layout, runner=FakeTools(), progress=progress, cancel=cancel
        )
    tools = FakeTools()
    inst.install(request(src, commit), layout=layout, runner=tools)
    assert tools.kinds() == ["venv", "pip", "check", "help"] and read_current(layout) is not None


def test_a_second_install_while_one_runs_is_refused(layout, repo):
    src, commit = repo
    with inst.install_lock(layout):
        with pytest.raises(
            inst.InstallBusy, match="Another install, update or remove of sd-scripts is running"
        ):
            inst.install(request(src, commit), layout=layout, runner=FakeTools())
        assert inst.busy(layout)
    assert not inst.busy(layout)


def test_kohya_ss_path_wins_over_the_managed_trainer(layout, repo, tmp_path, monkeypatch):
    src, commit = repo
    inst.install(request(src, commit), layout=layout, runner=FakeTools())
    monkeypatch.setenv("KOHYA_SS_PATH", str(tmp_path / "kohya_ss"))
    assert paths.kohya_ss_path() == tmp_path / "kohya_ss" and paths.kohya_python() is None


def test_without_any_trainer_the_default_is_still_home_kohya_ss(layout):
    assert paths.kohya_ss_path() == Path.home() / "kohya_ss" and paths.kohya_python() is None


def test_tokenizers_are_filled_from_comfyuis_files_and_used_by_default(layout, repo, tmp_path):
    from lora_workbench.training import kohya

    src, commit = repo
    comfy = make_comfyui(tmp_path / "ComfyUI")
    inst.install(request(src, commit, comfyui=comfy), layout=layout, runner=FakeTools())
    for name in ("openai_clip-vit-large-patch14", "laion_CLIP-ViT-bigG-14-laion2B-39B-b160k"):
        config = json.loads((layout.tokenizers / name / "tokenizer_config.json").read_text())
        assert config["model_max_length"] == 77 and "special_tokens_map_file" not in config
    assert kohya.default_tokenizer_cache() == str(layout.tokenizers)


def test_a_kohya_ss_path_install_keeps_sd_scripts_own_tokenizers(layout, repo, tmp_path, monkeypatch):
    from lora_workbench.training import kohya

    src, commit = repo
    inst.install(
        request(src, commit, comfyui=make_comfyui(tmp_path / "C")), layout=layout, runner=FakeTools()
    )
    monkeypatch.setenv("KOHYA_SS_PATH", str(tmp_path / "kohya_ss"))
    assert kohya.default_tokenizer_cache() == ""


def test_without_comfyuis_tokenizer_files_the_report_says_where_to_point(layout, repo):
    src, commit = repo
    report = inst.install(request(src, commit), layout=layout, runner=FakeTools())
    assert any("ComfyUI's tokenizer files were not found" in n for n in report.notes)


def test_comfyui_found_later_fills_the_tokenizers_and_checks_again(layout, repo, tmp_path):
    src, commit = repo
    inst.install(request(src, commit), layout=layout, runner=FakeTools())
    tools = FakeTools()
    report = inst.install(
        request(src, commit, comfyui=make_comfyui(tmp_path / "C")), layout=layout, runner=tools
    )
    assert report.steps_run == ["tokenizers", "check", "switch"] and tools.kinds() == ["check", "help"]


def test_no_trainer_is_a_sentence_pointing_to_the_button_and_the_command(layout):
    from lora_workbench.errors import ValidationError
    from lora_workbench.training import kohya

    with pytest.raises(ValidationError) as caught:
        kohya.find_install()
    text = str(caught.value)
    assert (
        "Settings -> LoRA Workbench -> Install sd-scripts" in text
        and "lora-workbench trainer install" in text
    )


def test_check_runs_the_checks_on_the_trainer_in_use(layout, repo):
    src, commit = repo
    inst.install(request(src, commit), layout=layout, runner=FakeTools())
    tools = FakeTools()
    assert inst.check(layout, runner=tools)["torch"] == "2.14.1" and tools.kinds() == ["check", "help"]


def test_remove_deletes_the_builds_the_record_and_the_tokenizers(layout, repo, tmp_path):
    src, commit = repo
    inst.install(
        request(src, commit, comfyui=make_comfyui(tmp_path / "C")), layout=layout, runner=FakeTools()
    )
    removed = inst.remove(layout)
    assert "current.json" in removed and "tokenizers" in removed
    assert read_current(layout) is None and paths.kohya_ss_path() == Path.home() / "kohya_ss"
    assert [p.name for p in layout.trainer_dir.iterdir() if not p.name.startswith(".")] == []


def test_cancel_stops_a_running_tool_at_once(tmp_path):
    import sys

    from lora_workbench.trainer_env import procs

    cancel = threading.Event()
    timer = threading.Timer(0.5, cancel.set)
    timer.start()
    code = "import time\nfor i in range(600):\n    print(i, flush=True)\n    time.sleep(0.1)\n"
    with pytest.raises(procs.InstallCancelled):
        procs.run([sys.executable, "-c", code], log=tmp_path / "log", cancel=cancel)
    log = (tmp_path / "log").read_text()
    assert log.startswith("0\n") and "599" not in log  # stopped, not run to its end
