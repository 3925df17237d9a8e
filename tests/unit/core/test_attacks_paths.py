"""Attacks on path confinement and the settings file: real files, real symlinks, real swaps.

Whatever a workflow, a route or a shared folder hands the pack, confinement never widens, nothing
outside the roots is read or written, and bad input is a sentence (WorkbenchError), never a crash.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lora_workbench import paths
from lora_workbench import settings as lw_settings
from lora_workbench.errors import PathNotAllowed, ValidationError, WorkbenchError

SECRET = b"outside secret"
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def world(roots, tmp_path_factory):
    """roots (the only allowed root) and an outside folder holding a secret."""
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.png").write_bytes(SECRET)
    (outside / "dir").mkdir()
    return roots, outside


def write_settings(tmp_path, monkeypatch, data) -> Path:
    f = tmp_path / "settings.json"
    f.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(f))
    return f


# --------------------------------------------------------------------------- settings of the wrong type
WRONG = {
    "roots": ["/", "/data", 1, {"a": "/"}, True, [1, 2], ["/ok", None], ["/a\x00"]],
    "library": [1, 2.5, ["/x"], {"p": "/"}, True, "a\x00b"],
    "comfyui_path": [["/"], 0],
    "a1111_path": [{"x": 1}],
    "forge_path": [False],
    "kohya_ss_path": [3],
    "kohya_python": [["python"]],
    "tokenizer_cache_dir": [7],
}
WRONG_CASES = [(k, v) for k, vs in WRONG.items() for v in vs]


@pytest.mark.parametrize(("key", "value"), WRONG_CASES, ids=[f"{k}={v!r}" for k, v in WRONG_CASES])
def test_a_setting_of_the_wrong_type_is_an_error_naming_file_and_key(
    roots, tmp_path, monkeypatch, key, value
):
    f = write_settings(tmp_path, monkeypatch, {key: value})
    with pytest.raises(lw_settings.SettingsError) as err:
        paths.load_settings()
    assert str(f) in str(err.value) and f"`{key}`" in str(err.value)
    # confinement never widens: a workflow path outside the roots stays refused
    with pytest.raises(WorkbenchError):
        paths.confine("/etc/passwd")


def test_a_string_roots_is_not_read_letter_by_letter(tmp_path, monkeypatch):
    monkeypatch.delenv("LORA_WORKBENCH_ROOTS", raising=False)
    for var in ("SD_MODELS_PATH", "COMFYUI_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(paths, "_registered_roots", [])
    write_settings(tmp_path, monkeypatch, {"roots": "/data"})
    with pytest.raises(lw_settings.SettingsError, match="must be a list of folder names"):
        paths.allowed_roots()
    with pytest.raises(WorkbenchError):
        paths.confine("/etc")


@pytest.mark.parametrize(
    "text",
    ["{", "[]", '"x"', "\xff", "[" * 100000 + "]" * 100000, '{"roots": ' + "[" * 5000 + "]" * 5000 + "}"],
    ids=["broken", "list", "string", "latin1", "deep", "deep roots"],
)
def test_a_broken_settings_file_is_one_sentence(tmp_path, monkeypatch, text):
    f = tmp_path / "settings.json"
    f.write_bytes(text.encode("latin-1") if text == "\xff" else text.encode())
    monkeypatch.setenv("LORA_WORKBENCH_SETTINGS", str(f))
    with pytest.raises(lw_settings.SettingsError) as err:
        paths.load_settings()
    assert str(f) in str(err.value)


def test_a_huge_settings_file_is_refused_without_reading_it_all(tmp_path, monkeypatch):
    f = write_settings(tmp_path, monkeypatch, '{"a": "' + "x" * (2 << 20) + '"}')
    with pytest.raises(lw_settings.SettingsError, match="larger than 1 MiB"):
        paths.load_settings()
    assert f.stat().st_size > lw_settings.MAX_SETTINGS_BYTES


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@FAST
@given(data=st.dictionaries(st.sampled_from([*lw_settings.BY_KEY, "other"]), JSON, max_size=4))
def test_any_json_settings_either_loads_typed_or_is_a_sentence(tmp_path, monkeypatch, data):
    write_settings(tmp_path, monkeypatch, data)
    try:
        loaded = paths.load_settings()
    except lw_settings.SettingsError as exc:
        assert "settings file" in str(exc)
        return
    for key, setting in lw_settings.BY_KEY.items():
        value = loaded.get(key)
        if setting.kind == "path":
            assert value is None or isinstance(value, str)
        else:
            assert value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value))
            if value:  # the roots are exactly the strings given, nothing more
                assert value == [v for v in data[key] if v.strip()]


def test_the_settings_dialog_may_never_write_roots(tmp_path, monkeypatch):
    f = write_settings(tmp_path, monkeypatch, {"roots": ["/data"], "library": "/old"})
    with pytest.raises(lw_settings.SettingsError, match="by hand"):
        lw_settings.update({"roots": ["/"]})
    with pytest.raises(lw_settings.SettingsError, match="`library`"):
        lw_settings.update({"library": 5})
    got = lw_settings.update({"library": "/new", "forge_path": None})
    assert got["library"] == "/new" and json.loads(f.read_text())["roots"] == ["/data"]
    assert sorted(os.listdir(tmp_path)) == ["settings.json", "settings.json.lock"]  # no temp file left


WRITER_KEYS = [s.key for s in lw_settings.SETTINGS if s.ui_writable]
ROUNDS = 15


def _write_own_key(index: int) -> None:
    for n in range(ROUNDS):
        lw_settings.update({WRITER_KEYS[index]: f"/writer{index}/round{n}"})


@pytest.mark.skipif(os.name == "nt", reason="forked writers")
def test_writers_in_separate_processes_never_lose_each_others_keys(tmp_path, monkeypatch):
    # The CLI and ComfyUI's dialog are different processes: each read-merge-write must see the last.
    import multiprocessing

    f = write_settings(tmp_path, monkeypatch, {"roots": ["/data"]})
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_write_own_key, args=(i,)) for i in range(len(WRITER_KEYS))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * len(procs)
    data = json.loads(f.read_text("utf-8"))
    assert data == {
        "roots": ["/data"],
        **{k: f"/writer{i}/round{ROUNDS - 1}" for i, k in enumerate(WRITER_KEYS)},
    }


# --------------------------------------------------------------------------- confine: bad text
@pytest.mark.parametrize(
    "text",
    ["a" * 5000, "/x/" + "b" * 300, "x/" * 2100, "\ud800", "proj/\udcff\ud800", "~nouser-xq/x", "~nouser-xq"],
    ids=["5000 chars", "300-byte name", "deep", "lone surrogate", "mixed surrogates", "~nouser/x", "~nouser"],
)
def test_unusable_path_text_is_a_sentence_not_an_os_error(world, text):
    with pytest.raises(ValidationError) as err:
        paths.confine(text, what="project folder")
    assert "project folder" in str(err.value) and len(str(err.value)) < 400


@pytest.mark.parametrize("opener", [paths.open_file, paths.open_dir, paths.read_json])
def test_an_unknown_users_home_is_a_sentence_for_every_opener(world, opener):
    for confined in (True, False):
        with pytest.raises(ValidationError, match="a user this machine does not know"):
            opener("~nouser-xq/x", confined=confined)


def _build_tree(root: Path, outside: Path) -> None:
    (root / "a" / "b").mkdir(parents=True, exist_ok=True)
    (root / "a" / "b" / "f.png").write_bytes(b"inside")
    links = {
        "in": root / "a",
        "out": outside,
        "outfile": outside / "secret.png",
        "loop": root / "loop",
        "up": root.parent,
        "rel": Path("../a"),
    }
    for name, target in links.items():
        p = root / "a" / name
        if not os.path.lexists(p):
            p.symlink_to(target)


COMPONENTS = st.sampled_from(
    ["a", "b", "f.png", "in", "out", "outfile", "loop", "up", "rel", "..", ".", "", "x"]
)


@FAST
@given(parts=st.lists(COMPONENTS, min_size=1, max_size=7), absolute=st.booleans())
def test_confine_only_ever_answers_a_real_path_inside_the_roots(world, parts, absolute):
    root, outside = world
    _build_tree(root, outside)
    text = os.path.join(str(root) if absolute else "", *parts)
    try:
        got = paths.confine(text)
    except WorkbenchError:
        return
    assert got == Path(os.path.realpath(got))
    assert paths.is_within_roots(got, [Path(os.path.realpath(root))])
    try:
        with paths.open_file(text) as f:
            assert f.read() != SECRET
    except (WorkbenchError, FileNotFoundError):
        pass


# --------------------------------------------------------------------------- open, then check
def test_a_file_swapped_for_a_symlink_after_the_check_is_not_read(world, monkeypatch):
    root, outside = world
    sample = root / "sample.png"
    sample.write_bytes(b"png")
    real_confine = paths.confine

    def confine_then_swap(*args, **kwargs):
        got = real_confine(*args, **kwargs)
        sample.unlink()
        sample.symlink_to(outside / "secret.png")  # the attacker wins the race
        return got

    monkeypatch.setattr(paths, "confine", confine_then_swap)
    with pytest.raises(PathNotAllowed):
        paths.open_file(str(sample), what="sample image")


@pytest.mark.parametrize("proc", [True, False], ids=["proc", "no-proc"])
def test_a_folder_on_the_way_swapped_after_the_check_is_refused(world, monkeypatch, proc):
    root, outside = world
    (root / "run").mkdir()
    (root / "run" / "secret.png").write_bytes(b"inside")
    (outside / "run").mkdir()
    (outside / "run" / "secret.png").write_bytes(SECRET)
    if not proc:
        monkeypatch.setattr(paths, "_PROC_FD", None)
    real_confine = paths.confine

    def confine_then_swap(*args, **kwargs):
        got = real_confine(*args, **kwargs)
        (root / "run").rename(root / "run-old")
        (root / "run").symlink_to(outside / "run", target_is_directory=True)
        return got

    monkeypatch.setattr(paths, "confine", confine_then_swap)
    with pytest.raises(PathNotAllowed):
        paths.open_file(str(root / "run" / "secret.png"))


def test_a_racing_swapper_never_gets_an_outside_file_read(world):
    root, outside = world
    target = root / "sample.png"
    inside = root / "inside.png"
    inside.write_bytes(b"inside")
    stop = threading.Event()

    def swapper():
        tmp_link, tmp_file = root / ".l", root / ".f"
        while not stop.is_set():
            for make, tmp in ((lambda p: p.symlink_to(outside / "secret.png"), tmp_link), (None, tmp_file)):
                if os.path.lexists(tmp):
                    os.unlink(tmp)
                if make:
                    make(tmp)
                else:
                    os.link(inside, tmp)
                os.replace(tmp, target)

    t = threading.Thread(target=swapper, daemon=True)
    t.start()
    reads = refused = 0
    try:
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            try:
                with paths.open_file(str(target)) as f:
                    assert f.read() != SECRET
                    reads += 1
            except (WorkbenchError, FileNotFoundError):
                refused += 1
    finally:
        stop.set()
        t.join(5)
    assert reads + refused > 50


def test_a_fifo_under_an_image_name_is_refused_without_blocking(world):
    root, _ = world
    os.mkfifo(root / "img.png")
    t = time.monotonic()
    with pytest.raises(PathNotAllowed, match="regular file"):
        paths.open_file(str(root / "img.png"))
    with paths.open_dir(str(root)) as d, pytest.raises(PathNotAllowed, match="regular file"):
        d.read_bytes("img.png")
    assert time.monotonic() - t < 2


def test_writes_land_in_the_folder_that_was_opened(world):
    root, outside = world
    proj = root / "proj"
    proj.mkdir()
    with paths.open_dir(str(proj), what="project folder") as d:
        proj.rename(root / "proj-old")  # swap the folder for a link to outside after the open
        proj.symlink_to(outside / "dir", target_is_directory=True)
        d.write_atomic("dataset.toml", "x = 1\n")
    assert (root / "proj-old" / "dataset.toml").read_text() == "x = 1\n"
    assert os.listdir(outside / "dir") == []


def test_a_symlink_planted_at_the_name_is_replaced_not_written_through(world):
    root, outside = world
    (root / "dataset.toml").symlink_to(outside / "secret.png")
    with paths.open_dir(str(root)) as d:
        with pytest.raises(PathNotAllowed, match="symbolic link"):
            d.read_text("dataset.toml")
        d.write_atomic("dataset.toml", "x = 1\n")
    assert (outside / "secret.png").read_bytes() == SECRET
    assert not os.path.islink(root / "dataset.toml") and (root / "dataset.toml").read_text() == "x = 1\n"


def test_a_failed_write_leaves_no_temp_file_and_the_old_file(world, monkeypatch):
    root, _ = world
    (root / "dataset.toml").write_text("old")

    def boom(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with paths.open_dir(str(root)) as d, pytest.raises(OSError, match="No space"):
        d.write_atomic("dataset.toml", "new")
    assert sorted(p.name for p in root.iterdir() if p.name != "outside") == ["dataset.toml"]
    assert (root / "dataset.toml").read_text() == "old"


@pytest.mark.parametrize("name", ["..", ".", "", "a/b", "../x", "a\x00", "\ud800", "n" * 300])
def test_a_confined_dir_takes_only_single_names(world, name):
    root, _ = world
    with paths.open_dir(str(root)) as d, pytest.raises(ValidationError):
        d.write_atomic(name, "x")


def test_a_symlinked_subfolder_is_refused(world):
    root, outside = world
    (root / "images").symlink_to(outside / "dir", target_is_directory=True)
    with paths.open_dir(str(root)) as d, pytest.raises(PathNotAllowed, match="symbolic link"):
        d.subdir("images")


def test_open_dir_outside_the_roots_is_refused(world):
    _, outside = world
    with pytest.raises(PathNotAllowed):
        paths.open_dir(str(outside))
    with paths.open_dir(str(outside), confined=False) as d:  # the CLI: not confined
        assert d.read_bytes("secret.png") == SECRET


def test_makedirs_never_creates_through_a_parent_swapped_for_a_link(world, monkeypatch):
    root, outside = world
    real_confine = paths.confine
    calls = []

    def confine_then_swap(*args, **kwargs):
        got = real_confine(*args, **kwargs)
        if not calls:
            (root / "lib").symlink_to(outside / "dir", target_is_directory=True)
        calls.append(args)
        return got

    monkeypatch.setattr(paths, "confine", confine_then_swap)
    with pytest.raises(PathNotAllowed):
        paths.makedirs(str(root / "lib" / "models" / "loras"))
    assert os.listdir(outside / "dir") == []


def test_makedirs_makes_the_missing_parents_inside_the_root(world):
    root, _ = world
    with paths.makedirs(str(root / "a" / "b" / "c")) as d:
        d.write_atomic("x.txt", "x")
    assert (root / "a/b/c/x.txt").read_text() == "x"
