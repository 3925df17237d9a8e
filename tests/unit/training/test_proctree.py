"""The trainer's process tree: its own session, stopped as a whole, orphans found, reused PIDs spared."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from lora_workbench.training.proctree import ProcessTree, pid_alive

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX sessions and signals")

# A launcher that starts a worker (which may ignore SIGINT), writes its pid, then waits or exits.
LAUNCHER = """
import signal, subprocess, sys, time
ignore = sys.argv[2] == "ignore"
code = "import signal, time\\n" + ("signal.signal(signal.SIGINT, signal.SIG_IGN)\\n" if ignore else "")
child = subprocess.Popen([sys.executable, "-c", code + "time.sleep(120)"])
if ignore:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
open(sys.argv[1], "w").write(str(child.pid))
if sys.argv[3] == "wait":
    time.sleep(120)
"""


def start(tmp_path, ignore: str = "", then: str = "wait") -> tuple[ProcessTree, int]:
    pidfile = tmp_path / "worker.pid"
    tree = ProcessTree.start(
        [sys.executable, "-c", LAUNCHER, str(pidfile), ignore or "-", then],
        cwd=str(tmp_path),
        env=dict(os.environ),
    )
    deadline = time.monotonic() + 10
    while not (pidfile.is_file() and pidfile.read_text()):
        assert time.monotonic() < deadline, "the launcher did not start its worker"
        time.sleep(0.02)
    return tree, int(pidfile.read_text())


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not pid_alive(pid)


def test_the_child_runs_in_a_session_of_its_own(tmp_path):
    tree, worker = start(tmp_path)
    try:
        assert os.getsid(tree.pid) == tree.pid != os.getsid(0)
        assert os.getpgid(worker) == tree.pid
        assert {p.pid for p in tree.alive()} == {tree.pid, worker}
    finally:
        tree.stop(0.5)


@pytest.mark.parametrize("ignore", ["", "ignore"], ids=["sigint", "ignores-sigint"])
def test_stop_leaves_nothing_of_the_tree(tmp_path, ignore):
    tree, worker = start(tmp_path, ignore)
    t0 = time.monotonic()
    tree.stop(0.5)
    assert time.monotonic() - t0 < 10
    assert tree.popen.returncode is not None
    assert not pid_alive(worker) and tree.alive() == []


def test_an_orphan_left_by_an_exited_launcher_is_found_and_stopped(tmp_path):
    # The launcher exits at once; its worker is reparented (no longer a descendant) but stays in the group.
    tree, worker = start(tmp_path, then="exit")
    tree.popen.wait(10)
    assert pid_alive(worker)
    assert [p.pid for p in tree.alive()] == [worker]
    tree.stop_leftovers()
    assert gone_within(worker, 5)


def test_a_finished_tree_has_nothing_to_stop(tmp_path):
    tree = ProcessTree.start([sys.executable, "-c", "pass"], cwd=str(tmp_path), env=dict(os.environ))
    tree.popen.wait(10)
    assert tree.alive() == []
    tree.stop_leftovers()  # nothing to do, nothing raised
    tree.stop(0.1)


def test_a_pid_now_used_by_another_process_is_never_signalled(tmp_path):
    # An unrelated process that, to the tree, looks like a member that exited and whose PID was
    # given to someone else: same PID, another start time.
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        tree = ProcessTree.start([sys.executable, "-c", "pass"], cwd=str(tmp_path), env=dict(os.environ))
        tree.popen.wait(10)
        old = psutil.Process(bystander.pid)
        if not hasattr(old, "_ident"):
            pytest.skip("this psutil keeps process identity elsewhere")
        old._ident = (bystander.pid, old._ident[1] - 1000.0)  # "started" long before the bystander
        old._hash = None
        tree._known.add(old)
        tree.signal(signal.SIGKILL)
        tree.stop_leftovers()
        time.sleep(0.2)
        assert bystander.poll() is None, "a reused PID was signalled"
    finally:
        bystander.kill()
        bystander.wait()


def test_pid_alive_counts_a_zombie_as_gone(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not pid_alive(proc.pid)  # exited, not yet reaped
    proc.wait()
    assert not pid_alive(proc.pid) and pid_alive(os.getpid())
