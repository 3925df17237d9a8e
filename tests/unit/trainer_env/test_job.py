"""The settings dialog's background install job: one at a time, never during a training, its progress
and verdict kept for polling, Cancel through the flag, and failures as the installer's sentence."""

from __future__ import annotations

import threading

import pytest

from lora_workbench.trainer_env import install, job


@pytest.fixture(autouse=True)
def fresh_job(monkeypatch):
    monkeypatch.setattr(job, "_state", None)
    monkeypatch.setattr(job, "_cancel", None)
    monkeypatch.setattr(job, "_thread", None)
    monkeypatch.setattr(install, "busy", lambda layout=None: False)
    yield
    job.wait(10)


def start(action="install", training=False, work=None):
    return job.start(action, comfy_python="/usr/bin/python3", comfyui=None,
                     training_running=lambda: training, work=work)  # fmt: skip


def report(changed=True):
    checked = {"python": "3.11.7", "torch": "2.14.1", "gpu": "", "mps": False}
    return {"changed": changed, "src": "/data/sd-scripts/src", "checked": checked}


def test_a_finished_install_says_what_it_installed_and_where_training_runs():
    start(work=lambda *a: report())
    job.wait(10)
    state = job.current()
    assert state["state"] == "done" and state["action"] == "install"
    assert "installed in /data/sd-scripts/src" in state["message"]
    assert "torch 2.14.1" in state["message"] and "runs on the CPU" in state["message"]


def test_a_second_install_with_nothing_changed_says_up_to_date():
    start(work=lambda *a: report(changed=False))
    job.wait(10)
    assert "already up to date" in job.current()["message"]


def test_progress_shows_the_step_pips_line_and_the_time_so_far():
    release = threading.Event()

    def work(action, python, comfyui, progress, flag, trainer="sd-scripts"):
        progress(
            install.Progress("pip", "installing requirements", 3, 6, "Collecting torch " + "x" * 500, 12.5)
        )
        release.wait(10)
        return report()

    start(work=work)
    for _ in range(200):
        if job.current()["step"] == "pip":
            break
        threading.Event().wait(0.01)
    state = job.current()
    assert (state["state"], state["index"], state["total"]) == ("running", 3, 6)
    assert state["title"] == "installing requirements" and state["line"].startswith("Collecting torch")
    assert len(state["line"]) == job.MAX_LINE  # a long line is cut, the whole one is in the log
    release.set()


def test_an_install_is_refused_while_a_training_runs():
    with pytest.raises(job.JobRefused, match="A training is running"):
        start(training=True, work=lambda *a: report())
    assert job.current() is None


def test_a_second_job_is_refused_while_one_runs():
    release = threading.Event()
    start(work=lambda *a: release.wait(10) and report())
    with pytest.raises(job.JobRefused, match="already running"):
        start("check", work=lambda *a: report())
    release.set()


def test_an_install_started_from_the_command_line_refuses_the_dialogs(monkeypatch):
    monkeypatch.setattr(install, "busy", lambda layout=None: True)
    with pytest.raises(job.JobRefused, match="command line"):
        start(work=lambda *a: report())


def test_only_the_three_actions_exist():
    with pytest.raises(job.JobRefused, match="not an action"):
        start("remove", work=lambda *a: report())


def test_cancel_sets_the_flag_the_installer_stops_on_and_says_the_trainer_is_as_it_was():
    def work(action, python, comfyui, progress, flag, trainer="sd-scripts"):
        flag.wait(10)
        raise install.InstallCancelled("cancelled")

    start(work=work)
    assert job.cancel() is True
    job.wait(10)
    state = job.current()
    assert state["state"] == "cancelled" and "the trainer in use is as it was" in state["message"]
    assert job.cancel() is False  # nothing runs any more


def test_a_failed_install_shows_the_installers_sentence():
    def work(*a):
        raise install.TrainerInstallError('pip could not install sd-scripts\' requirements: "ERROR: x"')

    start(work=work)
    job.wait(10)
    state = job.current()
    assert state["state"] == "failed" and state["message"].startswith("pip could not install")


def test_an_unexpected_error_is_one_line_not_a_lost_thread_traceback():
    start(work=lambda *a: 1 / 0)
    job.wait(10)
    assert job.current()["message"] == "install failed: ZeroDivisionError: division by zero"


def test_the_install_request_comes_from_the_packs_pins_and_comfyuis_python(monkeypatch):
    from lora_workbench.trainer_env import pins, torch_pick

    monkeypatch.delenv(pins.SOURCE_ENV, raising=False)
    seen = {}
    monkeypatch.setattr(torch_pick, "pick", lambda spec, python: seen.setdefault("torch", (spec, python)))
    monkeypatch.setattr(
        install, "install", lambda request, **kw: seen.setdefault("request", request) and _Rep()
    )
    job._work("install", "/comfy/python", None, None, threading.Event())
    request = seen["request"]
    assert seen["torch"] == ("auto", "/comfy/python")
    assert (request.source, request.ref, request.python) == (pins.SOURCE, pins.REF, "/comfy/python")


def test_a_mirror_comes_only_from_the_servers_environment(monkeypatch):
    from lora_workbench.trainer_env import pins, torch_pick

    seen = {}
    monkeypatch.setenv(pins.SOURCE_ENV, "/srv/mirrors/sd-scripts.git")
    monkeypatch.setattr(torch_pick, "pick", lambda spec, python: None)
    monkeypatch.setattr(
        install, "install", lambda request, **kw: seen.setdefault("request", request) and _Rep()
    )
    job._work("install", "/comfy/python", None, None, threading.Event())
    assert (seen["request"].source, seen["request"].ref) == ("/srv/mirrors/sd-scripts.git", pins.REF)


class _Rep:
    def to_dict(self):
        return report()
