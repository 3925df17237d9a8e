"""HTTP routes for the caption editor: a subset's images with their captions, previews, bulk changes, saves.

The project comes from the browser, so it is confined (`paths.confine`) and every folder and file under
it is opened through the dataset's confined reader by the core (`dataset/caption_edit.py`): plain
folders and files only, no link followed, captions written atomically inside the open subset folder.
A save that finds a caption changed on disk since the editor read it answers 409 and writes nothing.
"""

from __future__ import annotations

from ._routes import PREFIX, HttpError, _in_thread, _json_body, _json_response, _str, _web, handler


def _core():
    from ..lora_workbench.dataset import caption_edit

    return caption_edit


def _project(value: str, caption_extension: str = ".txt"):
    from ..lora_workbench import paths

    resolved = paths.confine(value, what="project folder")
    if not resolved.is_dir():
        raise HttpError(
            404,
            f"The project folder {resolved} is not a folder that exists; pick the training project folder.",
        )
    return _core().project_for(resolved, paths.allowed_roots(), caption_extension)


def _query_int(request, key: str, default: int, hi: int) -> int:
    text = request.query.get(key, str(default))
    if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) > hi:
        raise HttpError(400, f"{key} must be a whole number from 0 to {hi}, not {text[:40]!r}.")
    return int(text)


def _run(fn, *args):
    """The core call with its sentences turned into 404 / 409 (the handler maps the others)."""
    core = _core()
    try:
        return fn(*args)
    except FileNotFoundError as exc:
        raise HttpError(404, str(exc).split("] ", 1)[-1]) from None
    except core.CaptionConflict as exc:
        raise HttpError(409, str(exc)) from None


def _listing(project, key: str | None, offset: int, limit: int) -> dict:
    core = _core()
    subsets = core.list_subsets(project)
    if key is None and subsets:
        key = subsets[0]["key"]
    chosen = core.subset_captions(project, key, offset, limit).to_dict() if key else None
    return {
        "project": project.path,
        "caption_extension": project.caption_extension,
        "subsets": subsets,
        "subset": chosen,
    }


@handler
async def captions_list(request):
    """GET ?project=&subset=images/3_Alice&offset=&limit=&caption_extension=: the project's subsets and
    one page of the chosen subset (default: the first): image, caption file, first line, hash, missing,
    plus the subset's tag counts and the images it skipped (links, odd files)."""
    q = request.query
    if not q.get("project"):
        raise HttpError(400, "project is required: the training project folder.")
    project = _project(q["project"], q.get("caption_extension", ".txt"))
    offset = _query_int(request, "offset", 0, 10_000_000)
    limit = _query_int(request, "limit", _core().DEFAULT_PAGE, _core().MAX_PAGE) or 1
    return _json_response(await _in_thread(_run, _listing, project, q.get("subset") or None, offset, limit))


@handler
async def captions_thumbnail(request):
    """GET ?project=&subset=&image=: a JPEG preview of one image of the subset, at most 256 px."""
    q = request.query
    for key in ("project", "subset", "image"):
        if not q.get(key):
            raise HttpError(400, f"{key} is required.")
    project = _project(q["project"])
    thumb = await _in_thread(_run, _core().image_thumbnail, project, q["subset"], q["image"])
    return _web().Response(
        body=thumb.data, content_type=thumb.content_type, headers={"Cache-Control": "private, no-cache"}
    )


@handler
async def captions_save(request):
    """POST {project, subset, caption_extension?, items: [{image, caption, hash}]}: write each image's
    caption line (later lines kept). `hash` is what the listing gave ("" for no caption); a caption
    changed on disk since is 409 and nothing is written. 200 {written, unchanged, subset}."""
    data = await _json_body(request)
    project = _project(_str(data, "project"), _str(data, "caption_extension", ".txt"))
    key = _str(data, "subset")
    core = _core()
    edits = core.parse_edits(data.get("items"))
    report = await _in_thread(_run, core.save_captions, project, key, edits)
    return _json_response({"saved": True, **report.to_dict()})


@handler
async def captions_bulk(request):
    """POST {op: add | add_first | remove | replace | trigger_first, tag?, find?, replace?, captions: [...]}:
    the caption lines with the action applied (nothing is written; the editor saves them)."""
    data = await _json_body(request)
    core = _core()
    op = core.BulkOp(_str(data, "op"), data.get("tag", ""), data.get("find", ""), data.get("replace", ""))
    texts = data.get("captions")
    core.check_count(texts, "captions")
    result = core.bulk(op, texts)
    changed = sum(1 for a, b in zip(texts, result, strict=True) if a != b)
    return _json_response({"captions": result, "changed": changed})


def add_routes(routes) -> None:
    routes.get(f"{PREFIX}/captions")(captions_list)
    routes.get(f"{PREFIX}/captions/thumbnail")(captions_thumbnail)
    routes.post(f"{PREFIX}/captions/save")(captions_save)
    routes.post(f"{PREFIX}/captions/bulk")(captions_bulk)
