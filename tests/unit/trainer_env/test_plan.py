"""The install plan, computed from the request alone: the build's name, step inputs, the requirement
and constraint files and the pip call."""

from __future__ import annotations

from pathlib import Path

from lora_workbench.trainer_env import plan
from lora_workbench.trainer_env.layout import Layout
from lora_workbench.trainer_env.torch_pick import parse_spec

PINNED = "48d368fa557731ad0488c07304dfeba8c07910eb"


def req(ref=PINNED, torch="torch==2.14.1 torchvision==0.29.1", python="/usr/bin/python3.11"):
    return plan.InstallRequest(torch=parse_spec(torch), python=python, ref=ref)


def test_the_button_can_only_install_the_pinned_source_and_commit():
    r = plan.InstallRequest.pinned(parse_spec("torch==2.14.1"), "/usr/bin/python3")
    assert r.source == "https://github.com/kohya-ss/sd-scripts.git" and r.ref == PINNED


def test_a_build_is_named_by_commit_torch_and_interpreter():
    assert plan.build_name(req()).startswith("48d368fa5577-torch2.14.1-")
    names = {
        plan.build_name(r)
        for r in (req(), req(ref="1" * 40), req(torch="torch==2.4.1+cu124"), req(python="/x"))
    }
    assert len(names) == 4


def test_a_changed_torch_redoes_pip_and_what_follows_but_not_the_clone_or_venv():
    a = plan.plan_install(req(), Layout(Path("/h")))
    b = plan.plan_install(req(torch="torch==2.14.1"), Layout(Path("/h")))
    same = [s.name for s, t in zip(a.steps, b.steps, strict=True) if s.inputs == t.inputs]
    assert same == ["clone", "venv"]


def test_sd_scripts_own_package_comes_from_the_checkout_and_bitsandbytes_is_left_out():
    text = "accelerate==1.6.0\nbitsandbytes\nbitsandbytes>=0.45 ; sys_platform=='linux'\n# -e .\n-e .\n"
    out = plan.requirements_text(text, Path("/h/src"))
    assert out == "accelerate==1.6.0\n# -e .\n-e /h/src\n"


def test_every_pip_call_carries_the_torch_constraint_and_the_index_of_a_cuda_build():
    p = plan.plan_install(req(torch="torch==2.4.1+cu124 torchvision==0.19.1+cu124"), Layout(Path("/h")))
    argv = plan.pip_argv(p)
    assert argv[1:5] == ["-m", "pip", "install", "--disable-pip-version-check"]
    assert argv[argv.index("--extra-index-url") + 1] == "https://download.pytorch.org/whl/cu124"
    assert argv[argv.index("-c") + 1] == str(p.constraints)
    assert plan.constraints_text(p.request.torch) == "torch==2.4.1+cu124\ntorchvision==0.19.1+cu124\n"


def test_a_pypi_torch_adds_no_index():
    assert "--extra-index-url" not in plan.pip_argv(plan.plan_install(req(), Layout(Path("/h"))))
