"""A second managed trainer from the same install code, driven by each backend's InstallSpec: musubi-tuner
in its own folder and venv, installed with `pip install -e <checkout>`, checked by importing
musubi_tuner; its path and python keys found the way sd-scripts' are; neither trainer touching the other."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_workbench import editable_settings, paths, settings
from lora_workbench.cli import main
from lora_workbench.cli.trainer import TRAINERS
from lora_workbench.errors import ValidationError
from lora_workbench.trainer_env import install as inst
from lora_workbench.trainer_env import pins, plan
from lora_workbench.trainer_env.layout import Layout, read_current
from lora_workbench.trainer_env.torch_pick import parse_spec
from tests.unit.trainer_env.trainer_fakes import FakeTools, make_musubi_repo, make_repo, request

MUSUBI = "musubi-tuner"
MUSUBI_PIN = "30c658c4f4b0bf05038b3346eff9670259b10fc7"
TRAINER_VARS = (
    "KOHYA_SS_PATH",
    "KOHYA_PYTHON",
    "MUSUBI_TUNER_PATH",
    "MUSUBI_PYTHON",
    "LORA_WORKBENCH_MUSUBI_SOURCE",
)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LORA_WORKBENCH_HOME", str(tmp_path / "home"))
    for var in TRAINER_VARS:
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "home"


@pytest.fixture
def musubi_repo(tmp_path):
    return make_musubi_repo(tmp_path / "musubi-src")


def musubi_request(src: Path, ref: str):
    return request(src, ref, trainer=MUSUBI)


def install_musubi(src: Path, ref: str, tools: FakeTools | None = None):
    return inst.install(musubi_request(src, ref), layout=Layout.default(MUSUBI), runner=tools or FakeTools())


# --------------------------------------------------------------------------- the specs
def test_every_trainer_declares_its_path_and_python_as_shell_only_settings():
    for spec in pins.specs():
        for key, env in ((spec.path_setting, spec.path_env), (spec.python_setting, spec.python_env)):
            declared = settings.BY_KEY[key]
            assert declared.env == env and declared.executable, key
            assert key in editable_settings.BY_KEY, key


def test_the_command_line_offers_exactly_the_trainers_the_backends_declare():
    assert TRAINERS == pins.ids() == ("sd-scripts", MUSUBI)


def test_musubi_tuner_is_pinned_to_the_commit_the_pack_is_built_against(capsys):
    assert main(["trainer", "pins", "--trainer", MUSUBI, "--field", "ref"]) == 0
    assert capsys.readouterr().out.strip() == MUSUBI_PIN
    assert pins.source(MUSUBI) == "https://github.com/kohya-ss/musubi-tuner.git"


def test_each_trainer_has_its_own_mirror_variable(monkeypatch):
    monkeypatch.setenv("LORA_WORKBENCH_MUSUBI_SOURCE", "/srv/mirrors/musubi-tuner")
    monkeypatch.delenv("LORA_WORKBENCH_TRAINER_SOURCE", raising=False)
    assert pins.source(MUSUBI) == "/srv/mirrors/musubi-tuner"
    assert pins.source("sd-scripts") == "https://github.com/kohya-ss/sd-scripts.git"
    r = plan.InstallRequest.pinned(parse_spec("torch==2.14.1"), "/usr/bin/python3", trainer=MUSUBI)
    assert (r.source, r.ref) == ("/srv/mirrors/musubi-tuner", MUSUBI_PIN)


@pytest.mark.parametrize("trainer", ["kohya_ss", "../sd-scripts", "", "musubi_tuner"])
def test_an_unknown_trainer_is_a_sentence_before_anything_is_made(trainer):
    with pytest.raises(
        ValidationError, match="is not a trainer the pack installs; one of sd-scripts, musubi-tuner"
    ):
        plan.InstallRequest.pinned(parse_spec("torch==2.14.1"), "/usr/bin/python3", trainer=trainer)


@pytest.mark.parametrize("trainer", ["../x", "a/b", "", ".."])
def test_a_trainer_folder_name_is_checked_before_it_is_joined_to_a_path(trainer):
    with pytest.raises(ValueError, match="not a trainer id"):
        Layout(Path("/h"), trainer)


# --------------------------------------------------------------------------- the plan
def test_musubi_installs_its_checkout_with_pip_install_e_and_takes_no_tokenizers():
    req = plan.InstallRequest(
        torch=parse_spec("torch==2.14.1 torchvision==0.29.1"), python="/p", trainer=MUSUBI
    )
    p = plan.plan_install(req, Layout(Path("/h"), MUSUBI))
    assert [s.name for s in p.steps] == ["clone", "venv", "pip", "check", "switch"]
    assert p.steps[0].title == "clone musubi-tuner"
    assert p.build.root.parent == Path("/h/trainers/musubi-tuner")
    argv = plan.pip_argv(p)
    assert argv[-2:] == ["-e", str(p.build.src)] and "-r" not in argv
    assert argv[argv.index("-c") + 1] == str(p.constraints) and "torch==2.14.1" in argv


def test_sd_scripts_keeps_its_requirement_file_and_its_tokenizers():
    req = plan.InstallRequest(torch=parse_spec("torch==2.14.1"), python="/p")
    p = plan.plan_install(req, Layout(Path("/h")))
    assert [s.name for s in p.steps] == ["clone", "venv", "pip", "tokenizers", "check", "switch"]
    assert plan.pip_argv(p)[-2:] == ["-r", str(p.requirements)]


# --------------------------------------------------------------------------- the install
def test_a_musubi_install_builds_beside_sd_scripts_and_becomes_the_musubi_tuner_in_use(home, musubi_repo):
    src, commit = musubi_repo
    tools = FakeTools()
    report = install_musubi(src, commit, tools)
    assert report.steps_run == ["clone", "venv", "pip", "check", "switch"] and report.tokenizers == ""
    current = read_current(Layout.default(MUSUBI))
    assert current.record["commit"] == commit and current.record["trainer"] == MUSUBI
    assert Path(report.src).is_relative_to(home / "trainers" / MUSUBI)
    assert paths.musubi_tuner_path() == current.src and paths.musubi_python() == current.python
    assert paths.managed_trainer() is None and paths.kohya_python() is None  # sd-scripts: untouched


def test_the_musubi_check_imports_musubi_tuner_and_runs_its_training_script(home, musubi_repo):
    src, commit = musubi_repo
    tools = FakeTools()
    report = install_musubi(src, commit, tools)
    check = next(argv for kind, argv in tools.calls if kind == "check")
    assert check[3:] == ["musubi_tuner"]  # no tokenizer folders
    helped = next(argv for kind, argv in tools.calls if kind == "help")
    assert helped[1:] == [str(Path(report.src) / "src/musubi_tuner/qwen_image_train_network.py"), "--help"]
    pip = next(argv for kind, argv in tools.calls if kind == "pip")
    assert pip[-2:] == ["-e", report.src]


def test_a_second_musubi_install_runs_no_tool(home, musubi_repo):
    src, commit = musubi_repo
    install_musubi(src, commit)
    again = FakeTools()
    assert not install_musubi(src, commit, again).changed and again.calls == []


def test_a_source_that_is_not_musubi_tuner_is_refused_with_the_file_it_lacks(home, tmp_path):
    src, commit = make_repo(tmp_path / "sd-scripts-src")  # a clone of the other trainer
    with pytest.raises(
        inst.TrainerInstallError,
        match="has no src/musubi_tuner/wan_train_network.py; give --source a clone of kohya-ss/musubi-tuner",
    ):
        install_musubi(src, commit)
    assert paths.musubi_tuner_path() is None


def test_a_failed_musubi_pip_names_the_trainer_and_records_nothing(home, musubi_repo):
    src, commit = musubi_repo
    with pytest.raises(inst.TrainerInstallError, match="pip could not install musubi-tuner's requirements"):
        install_musubi(src, commit, FakeTools(pip_fails=True))
    assert read_current(Layout.default(MUSUBI)) is None


def test_musubi_tuner_path_and_musubi_python_win_over_the_managed_install(
    home, musubi_repo, tmp_path, monkeypatch
):
    src, commit = musubi_repo
    report = install_musubi(src, commit)
    monkeypatch.setenv("MUSUBI_PYTHON", "/opt/musubi/venv/bin/python")
    assert paths.musubi_tuner_path() == Path(report.src)
    assert paths.musubi_python() == Path("/opt/musubi/venv/bin/python")
    monkeypatch.delenv("MUSUBI_PYTHON")
    monkeypatch.setenv("MUSUBI_TUNER_PATH", str(tmp_path / "mine"))
    assert paths.musubi_tuner_path() == tmp_path / "mine"
    assert paths.musubi_python() is None  # the managed python belongs to the managed checkout only


def test_the_settings_file_names_musubi_tuner_like_the_environment_does(home, tmp_path):
    settings.update({"musubi_tuner_path": str(tmp_path / "mt"), "musubi_python": str(tmp_path / "py")})
    assert paths.musubi_tuner_path() == tmp_path / "mt" and paths.musubi_python() == tmp_path / "py"


def test_removing_musubi_tuner_leaves_sd_scripts_installed(home, musubi_repo, tmp_path):
    sds, sds_commit = make_repo(tmp_path / "sd-scripts-src")
    inst.install(request(sds, sds_commit), layout=Layout.default(), runner=FakeTools())
    src, commit = musubi_repo
    install_musubi(src, commit)
    assert inst.remove(Layout.default(MUSUBI))
    assert paths.musubi_tuner_path() is None and paths.managed_trainer() is not None


# --------------------------------------------------------------------------- the command line
def test_status_says_what_musubi_tuner_training_uses_and_why(home, musubi_repo, capsys, monkeypatch):
    assert main(["trainer", "status", "--trainer", MUSUBI]) == 0
    assert "in use:     - (from nothing (not installed, not set))" in capsys.readouterr().out
    src, commit = musubi_repo
    report = install_musubi(src, commit)
    main(["trainer", "status", "--trainer", MUSUBI])
    out = capsys.readouterr().out
    assert (
        f"pinned:     musubi-tuner {MUSUBI_PIN[:12]}" in out
        and f"in use:     {report.src} (from managed)" in out
    )
    monkeypatch.setenv("MUSUBI_TUNER_PATH", "/opt/musubi-tuner")
    main(["trainer", "status", "--trainer", MUSUBI])
    assert "in use:     /opt/musubi-tuner (from MUSUBI_TUNER_PATH)" in capsys.readouterr().out


def test_update_and_check_without_a_musubi_install_say_how_to_install_it(home, capsys):
    for action in ("update", "check"):
        assert main(["trainer", action, "--trainer", MUSUBI]) == 1
        err = capsys.readouterr().err
        assert (
            "No managed musubi-tuner in" in err
            and "`lora-workbench trainer install --trainer musubi-tuner`" in err
        )


def test_an_unknown_trainer_on_the_command_line_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["trainer", "install", "--trainer", "kohya_ss"])
    assert exc.value.code == 2 and "invalid choice: 'kohya_ss'" in capsys.readouterr().err


def test_kohya_ss_path_set_leaves_the_managed_musubi_tuner_in_use(home, musubi_repo, monkeypatch, tmp_path):
    src, commit = musubi_repo
    report = install_musubi(src, commit)
    monkeypatch.setenv("KOHYA_SS_PATH", str(tmp_path / "kohya_ss"))
    assert paths.musubi_tuner_path() == Path(report.src) and paths.managed_trainer() is None
