"""A shared dataset is untrusted: attacks with real files, real symlinks and real races, through the
core, the node, the HTTP route and the CLI. Each asserts that nothing outside the allowed roots was
read, listed or written (an audit of every open and listing by this process), and that bad input is
a clear error, never a traceback or a half-applied change.
"""

from __future__ import annotations

import builtins
import os
import stat
from pathlib import Path

import pytest
from PIL import Image

from lora_workbench.cli import main
from lora_workbench.dataset import balance, confined, dataset_toml, prepare
from lora_workbench.dataset.confined import Guard
from lora_workbench.errors import PathNotAllowed, ValidationError, WorkbenchError
from tests.unit.dataset.dataset_fakes import make_subset, opts

SECRET = "SECRET-CAPTION-TEXT"


# --------------------------------------------------------------------------- fixtures
@pytest.fixture
def outside(tmp_path_factory) -> Path:
    """A folder outside every allowed root, holding a subset's worth of files and a secret."""
    out = tmp_path_factory.mktemp("outside-the-roots")
    folder = out / "subset"
    folder.mkdir()
    for i in range(2):
        Image.new("RGB", (64, 64)).save(folder / f"s{i}.png")
        (folder / f"s{i}.txt").write_text(SECRET)
    (out / "secret.txt").write_text(SECRET)
    Image.new("RGB", (64, 64)).save(out / "secret.png")
    (out / "target.toml").write_text("# the user's own file\n")
    return out


@pytest.fixture
def proj(roots) -> Path:
    root = roots / "proj"
    make_subset(root, "3_Cat", 3)
    make_subset(root, "1_Dog", 2)
    return root


@pytest.fixture
def guard(roots) -> Guard:
    from lora_workbench import paths

    return Guard(paths.allowed_roots())


def tree(path: Path) -> dict:
    """Every entry under `path` with its content hash or link text (what 'nothing changed' compares)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[str(p)] = ("link", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                out[str(p)] = ("file", p.read_bytes(), st.st_mtime_ns)
            else:
                out[str(p)] = ("dir",)
    return out


@pytest.fixture
def audit(monkeypatch, outside):
    """Records the real path of everything this process opens or lists; `audit.check()` fails on any
    path inside `outside`."""
    seen: list[str] = []
    real_open, real_scandir, real_bopen = os.open, os.scandir, builtins.open

    def where(fd: int) -> str:
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return ""

    def os_open(path, flags, *a, **kw):
        fd = real_open(path, flags, *a, **kw)
        seen.append(where(fd))
        return fd

    def scandir(path="."):
        seen.append(where(path) if isinstance(path, int) else os.path.realpath(path))
        return real_scandir(path)

    def bopen(file, *a, **kw):
        f = real_bopen(file, *a, **kw)
        if hasattr(f, "fileno"):
            seen.append(where(f.fileno()))
        return f

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(builtins, "open", bopen)

    class Audit:
        paths = seen

        @staticmethod
        def reset():
            """Forget what the test's own set-up read (call right before the attacked operation)."""
            seen.clear()

        @staticmethod
        def check():
            bad = [p for p in seen if p and p.startswith(str(outside.resolve()))]
            assert not bad, f"read outside the roots: {bad}"

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("no /proc/self/fd to audit opens")
    return Audit


@pytest.fixture
def node(pack, comfy, roots):
    comfy.start_server()
    yield pack.NODE_CLASS_MAPPINGS["DatasetSubsetWeights"]()
    comfy.modules["server"].PromptServer.instance = None


def run_node(node, project, **kw):
    args = dict(
        project_folder=str(project),
        weights="",
        width=64,
        height=64,
        enable_bucket=False,
        apply_mode="toml (non-destructive)",
        batch_size=1,
        epochs=1,
        max_items_per_epoch=0,
    )
    args.update(kw)
    return node.prepare(**args)


def codes(report) -> set[str]:
    return {i["code"] for i in report["issues"]}


# --------------------------------------------------------------------------- symlinks out of the roots
def test_a_subset_folder_linked_outside_is_refused_and_never_read(proj, outside, guard, audit):
    (proj / "images" / "5_evil").symlink_to(outside / "subset", target_is_directory=True)
    before = tree(outside)
    audit.reset()
    r = prepare.preview(proj, opts(), guard=guard)
    audit.check()
    assert "link-outside" in codes(r) and not r["ok"]
    assert SECRET not in str(r)
    assert "evil" not in {s["name"] for s in r["subsets"]}
    with pytest.raises(ValidationError, match="outside the allowed roots"):
        prepare.prepare_dataset(proj, opts(), guard=guard)
    audit.check()
    assert not (proj / "dataset.toml").exists() and tree(outside) == before


def test_the_node_refuses_a_linked_subset_folder(node, proj, outside, audit):
    (proj / "images" / "5_evil").symlink_to(outside / "subset", target_is_directory=True)
    audit.reset()
    with pytest.raises(ValidationError, match="5_evil is a link to .* outside the allowed roots"):
        run_node(node, proj)
    audit.check()


def test_an_image_or_caption_linked_outside_is_refused(proj, outside, guard, audit):
    cat = proj / "images" / "3_Cat"
    (cat / "leak.png").symlink_to(outside / "secret.png")
    (cat / "leak.txt").write_text("cat")
    (cat / "img0.txt").unlink()
    (cat / "img0.txt").symlink_to(outside / "secret.txt")
    audit.reset()
    r = prepare.preview(proj, opts(), guard=guard)
    audit.check()
    messages = " ".join(i["message"] for i in r["issues"] if i["severity"] == "error")
    assert "3_Cat/leak.png is a link to" in messages and "img0.txt cannot be used as a caption" in messages
    assert SECRET not in str(r)


def test_the_images_folder_itself_linked_outside_is_refused(roots, outside, guard, audit):
    root = roots / "p2"
    root.mkdir()
    (root / "images").symlink_to(outside, target_is_directory=True)
    audit.reset()
    r = prepare.preview(root, opts(), guard=guard)
    audit.check()
    assert "link-outside" in codes(r) and "layout" in codes(r)


# --------------------------------------------------------------------------- a plain folder of images
def plain_folder(roots: Path, name: str = "mochi") -> Path:
    """A shared folder of images with no images/N_Subject/ layout (read as one subset)."""
    root = roots / name
    root.mkdir()
    for i in range(2):
        Image.new("RGB", (64, 64)).save(root / f"p{i}.png")
        (root / f"p{i}.txt").write_text("mochi")
    return root


def test_a_plain_folders_image_or_caption_linked_outside_is_refused_and_never_read(
    roots, outside, guard, audit
):
    root = plain_folder(roots)
    (root / "leak.png").symlink_to(outside / "secret.png")
    (root / "p0.txt").unlink()
    (root / "p0.txt").symlink_to(outside / "secret.txt")
    before = tree(outside)
    audit.reset()
    r = prepare.preview(root, opts(), guard=guard)
    audit.check()
    messages = " ".join(i["message"] for i in r["issues"] if i["severity"] == "error")
    assert "mochi/leak.png is a link to" in messages and "p0.txt cannot be used as a caption" in messages
    with pytest.raises(ValidationError, match="leak.png is a link to .* outside the allowed roots"):
        prepare.prepare_dataset(root, opts(), guard=guard)
    audit.check()
    assert SECRET not in str(r) and tree(outside) == before and not (root / "dataset.toml").exists()


def test_a_plain_folders_fifo_image_never_hangs_the_scan(roots, guard):
    root = plain_folder(roots)
    os.mkfifo(root / "pipe.png")
    r = prepare.preview(root, opts(), guard=guard)
    assert any("pipe.png is not a file" in i["message"] for i in r["issues"])


def test_the_node_never_renames_a_shared_plain_folder(node, roots):
    root = plain_folder(roots)
    (root / "images").mkdir()
    for i in range(2):
        Image.new("RGB", (64, 64)).save(root / "images" / f"q{i}.png")
    before = tree(roots)
    out = run_node(node, root, apply_mode="rename folders", folder_repeats=7)
    after = tree(roots)
    assert {k: v for k, v in after.items() if not k.endswith("dataset.toml")} == before
    assert out["result"][0].subsets[0].repeats == 7


def test_links_inside_the_roots_are_followed_at_their_checked_target(proj, roots, guard, audit):
    shared = roots / "shared-subsets" / "2_Bird"
    make_subset(roots / "shared-subsets", "2_Bird", 2)
    shared = roots / "shared-subsets" / "images" / "2_Bird"
    (proj / "images" / "2_Bird").symlink_to(shared, target_is_directory=True)
    audit.reset()
    ds, _ = prepare.prepare_dataset(proj, opts(), guard=guard)
    bird = next(s for s in ds.subsets if s.name == "Bird")
    assert bird.image_dir == str(shared.resolve()) and bird.images == 2  # sd-scripts reads the checked target


def test_the_cli_follows_links_but_says_so(proj, outside, capsys):
    (proj / "images" / "5_evil").symlink_to(outside / "subset", target_is_directory=True)
    assert main(["dataset", "weights", str(proj), "--width", "64", "--height", "64"]) == 0
    out = capsys.readouterr().out
    assert "5_evil is a link to" in out and "followed (the command line is not confined)" in out


# --------------------------------------------------------------------------- check-then-use races
def test_a_project_swapped_for_a_link_after_the_check_is_not_followed(proj, outside, guard, audit):
    checked = proj.resolve()
    moved = proj.with_name("moved-away")
    proj.rename(moved)
    proj.symlink_to(outside, target_is_directory=True)  # the attacker wins the race
    audit.reset()
    with pytest.raises(PathNotAllowed):
        prepare.preview(checked, opts(), guard=guard)
    with pytest.raises(PathNotAllowed):
        prepare.prepare_dataset(checked, opts(), guard=guard)
    audit.check()
    assert not (outside / "dataset.toml").exists()


def test_a_subset_folder_swapped_for_a_link_during_the_scan_is_not_followed(
    proj, outside, guard, audit, monkeypatch
):
    real = confined.Folder.entries
    swapped = []

    def entries(self):
        found = real(self)
        if self.path.name == "images" and not swapped:
            cat = self.path / "3_Cat"
            cat.rename(self.path / "3_Cat.bak")
            cat.symlink_to(outside / "subset", target_is_directory=True)
            swapped.append(cat)
        return found

    monkeypatch.setattr(confined.Folder, "entries", entries)
    audit.reset()
    r = prepare.preview(proj, opts(), guard=guard)
    audit.check()
    cat = next(s for s in r["subsets"] if s["dirname"] == "3_Cat")
    assert cat["images"] == 0 and "folder-unreadable" in codes(r)
    assert SECRET not in str(r)


def test_a_dataset_toml_that_is_a_link_is_never_written_through(proj, outside, guard):
    (proj / "dataset.toml").symlink_to(outside / "target.toml")
    before = tree(outside)
    with pytest.raises(WorkbenchError, match="is a link; the pack never writes through a link"):
        prepare.prepare_dataset(proj, opts(), guard=guard)
    assert tree(outside) == before and (proj / "dataset.toml").is_symlink()


def test_a_planted_temp_file_link_is_not_written_through(proj, outside, guard):
    for name in (f".dataset.toml.tmp-{os.getpid()}", ".dataset.toml.tmp"):
        (proj / name).symlink_to(outside / "target.toml")
    before = tree(outside)
    ds, _ = prepare.prepare_dataset(proj, opts(), guard=guard)
    assert tree(outside) == before and Path(ds.toml_path).is_file() and not Path(ds.toml_path).is_symlink()


def test_a_foreign_file_swapped_in_before_the_write_is_kept(proj, guard, monkeypatch):
    real = confined.Folder.read_own_text

    def read(self, name, limit=1 << 20):
        text = real(self, name, limit)
        if name == "dataset.toml":
            (proj / "dataset.toml").write_text("# the user's own config\n")
            return real(self, name, limit)
        return text

    monkeypatch.setattr(confined.Folder, "read_own_text", read)
    with pytest.raises(WorkbenchError, match="not written by lora-workbench"):
        prepare.prepare_dataset(proj, opts(), guard=guard)
    assert (proj / "dataset.toml").read_text() == "# the user's own config\n"


# --------------------------------------------------------------------------- the resize cache
def test_a_cache_folder_linked_outside_is_refused(proj, outside, guard, audit):
    Image.new("RGB", (32, 32)).save(proj / "images" / "3_Cat" / "img0.png")
    (proj / "cache").symlink_to(outside, target_is_directory=True)
    before = tree(outside)
    audit.reset()
    with pytest.raises(PathNotAllowed):
        prepare.prepare_dataset(proj, opts(wrong_size="resize"), guard=guard)
    audit.check()
    assert tree(outside) == before


def test_a_planted_link_in_the_cache_store_is_replaced_not_used(proj, outside, guard):
    Image.new("RGB", (32, 32)).save(proj / "images" / "3_Cat" / "img0.png")
    ds, _ = prepare.prepare_dataset(proj, opts(wrong_size="resize"), guard=guard)
    store = proj / "cache" / "resized" / "64x64" / "store"
    (name,) = os.listdir(store)
    (store / name).unlink()
    (store / name).symlink_to(outside / "secret.png")
    cat = Path(next(s.image_dir for s in ds.subsets if s.name == "Cat"))
    (cat / "img0.png").unlink()
    (cat / "img0.png").symlink_to(outside / "secret.png")  # and one in the subset mirror
    before = tree(outside)
    prepare.prepare_dataset(proj, opts(wrong_size="resize"), guard=guard)
    assert not (store / name).is_symlink() and not (cat / "img0.png").is_symlink()
    assert tree(outside) == before


# --------------------------------------------------------------------------- bad names and captions
def test_a_non_utf8_subset_name_is_a_clear_error_leaving_no_temp_file(proj, guard):
    bad = os.fsencode(str(proj / "images")) + b"/2_caf\xe9"
    try:
        os.mkdir(bad)
    except OSError:  # macOS and Windows file systems refuse names that are not UTF-8
        pytest.skip("this file system refuses names that are not UTF-8")
    Image.new("RGB", (64, 64)).save(os.fsdecode(bad + b"/a.png"))
    with open(bad + b"/a.txt", "w") as f:
        f.write("x")
    for mode in ("toml", "rename"):
        before = sorted(os.listdir(os.fsencode(str(proj))))
        images_before = sorted(os.listdir(os.fsencode(str(proj / "images"))))
        with pytest.raises(ValidationError, match="is not valid UTF-8"):
            prepare.prepare_dataset(proj, opts(repeats="equal"), apply_mode=mode, guard=guard)
        assert sorted(os.listdir(os.fsencode(str(proj)))) == before  # no temp file, no journal
        assert sorted(os.listdir(os.fsencode(str(proj / "images")))) == images_before  # nothing renamed


def test_a_caption_of_only_spaces_is_flagged_like_an_empty_one(proj, guard):
    (proj / "images" / "3_Cat" / "img1.txt").write_text(" \t  \u3000 \n" + "x" * 100)
    r = prepare.preview(proj, opts(), guard=guard)
    assert "caption-empty" in codes(r) and not r["ok"]


def test_special_files_never_hang_or_crash_the_scan(proj, guard):
    cat = proj / "images" / "3_Cat"
    os.mkfifo(cat / "pipe.png")
    (cat / "img2.txt").unlink()
    os.mkfifo(cat / "img2.txt")  # a caption that would block a plain open()
    (cat / "loop.png").symlink_to(cat / "loop.png")
    (cat / "dangling.png").symlink_to(cat / "nowhere.png")
    r = prepare.preview(proj, opts(), guard=guard)
    messages = [i["message"] for i in r["issues"]]
    assert any("pipe.png is not a file" in m for m in messages)
    assert any("dangling.png is a broken link" in m for m in messages)
    assert any("img2.png has no caption" in m for m in messages)


def test_a_huge_caption_is_read_only_so_far(proj, guard):
    big = proj / "images" / "3_Cat" / "img0.txt"
    with open(big, "wb") as f:
        f.write(b"cat, ")
        f.truncate(200 * 1024 * 1024)  # sparse: 200 MiB of zero bytes after the text
    r = prepare.preview(proj, opts(), guard=guard)
    assert r["subsets"]


# --------------------------------------------------------------------------- weights text
@pytest.mark.parametrize(
    "text, needle",
    [
        ("Cat: 1\nCat: 2", "given twice"),
        ('{"Cat": 1, "Cat": 2}', "given twice"),
        ("Cat: 1\n3_Cat: 2", "given twice"),
        ("Cat: 1e999", "finite number"),
        ("[" * 100_000, "is not `Subject: weight`"),
        ("{" + '"a":' * 50_000 + "1" + "}" * 50_000, "not valid"),
    ],
)
def test_bad_weights_are_one_clear_error(proj, guard, text, needle):
    r = prepare.preview(proj, opts(text), guard=guard)
    assert not r["ok"] and any(needle in i["message"] for i in r["issues"]), r["issues"]


@pytest.mark.parametrize("w", ["1e-5", "1e-320", "5e-324", "1e308", "1.7976931348623157e308"])
def test_tiny_and_huge_weights_through_node_and_cli(node, proj, capsys, w):
    ds, _ = run_node(node, proj, weights=f"Cat: {w}\nDog: {w}")["result"]
    assert all(s.repeats >= 1 for s in ds.subsets)
    ds, _ = run_node(node, proj, weights=f"Cat: {w}\nDog: 1")["result"]
    assert all(s.repeats >= 1 for s in ds.subsets)
    assert (
        main(["dataset", "weights", str(proj), "--width", "64", "--height", "64", "--set", f"Cat={w}"]) == 0
    )
    assert "Traceback" not in capsys.readouterr().err


def test_balancing_with_tiny_weights_twice_no_longer_divides_by_zero():
    r = balance.balance_repeats({"a": 3, "b": 5}, {"a": 1e-5, "b": 1e-5})
    assert r.repeats == {"a": 5, "b": 3}


# --------------------------------------------------------------------------- the preview route
@pytest.fixture
def routes_client(pack, roots, monkeypatch, aiohttp_client):
    from aiohttp import web

    mod = pack.nodes._routes
    monkeypatch.setattr(mod, "_registered_on", [])
    table = web.RouteTableDef()
    mod.add_routes(table)
    app = web.Application()
    app.add_routes(table)
    return aiohttp_client(app)


@pytest.mark.asyncio
async def test_the_preview_route_never_returns_outside_captions(routes_client, proj, outside, audit):
    client = await routes_client
    (proj / "images" / "5_evil").symlink_to(outside / "subset", target_is_directory=True)
    cat = proj / "images" / "3_Cat"
    (cat / "img0.txt").unlink()
    (cat / "img0.txt").symlink_to(outside / "secret.txt")
    audit.reset()
    r = await client.post(
        "/lora_workbench/dataset/preview", json={"project": str(proj), "width": 64, "height": 64}
    )
    assert r.status == 200
    body = await r.text()
    assert SECRET not in body and "outside the allowed roots" in body
    audit.check()


def test_dataset_toml_write_refuses_text_that_is_not_utf8(tmp_path):
    with pytest.raises(WorkbenchError, match="not valid UTF-8"):
        dataset_toml.write(tmp_path / "dataset.toml", "image_dir = '\udce9'")
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- the same through the CLI and the node
def make_non_utf8_subset(proj: Path) -> None:
    bad = os.fsencode(str(proj / "images")) + b"/2_caf\xe9"
    try:
        os.mkdir(bad)
    except OSError:  # macOS and Windows file systems refuse names that are not UTF-8
        pytest.skip("this file system refuses names that are not UTF-8")
    Image.new("RGB", (64, 64)).save(os.fsdecode(bad + b"/a.png"))
    with open(bad + b"/a.txt", "w") as f:
        f.write("x")


def test_the_cli_reports_a_non_utf8_name_in_one_line(proj, capsys):
    make_non_utf8_subset(proj)
    before = sorted(os.listdir(os.fsencode(str(proj))))
    assert main(["dataset", "apply", str(proj), "--width", "64", "--height", "64", "--mode", "rename"]) == 1
    err = capsys.readouterr().err
    assert "is not valid UTF-8" in err and "Traceback" not in err
    assert sorted(os.listdir(os.fsencode(str(proj)))) == before


def test_the_node_reports_a_non_utf8_name_and_duplicate_weights(node, proj):
    make_non_utf8_subset(proj)
    with pytest.raises(ValidationError, match="is not valid UTF-8"):
        run_node(node, proj)
    assert not (proj / "dataset.toml").exists()
    with pytest.raises(ValidationError, match="given twice"):
        run_node(node, proj, weights="Cat: 1\nCat: 2")
