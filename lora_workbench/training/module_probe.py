"""Can the sd-scripts environment import a module (LyCORIS for its network types)? Asked once, then
remembered, so a missing package is a sentence before launch instead of a traceback minutes later.

Asking means starting that Python and importing the module (and torch with it): seconds. So the
answer is kept in `paths.cache_dir()/module-probe.json` (the pattern of the device probe), under the
interpreter, the module and PYTHONPATH, with a fingerprint taken without starting anything: the
interpreter, its site-packages folders, the PYTHONPATH folders and the module's own folder. Installing
or removing a package there changes a folder's mtime and makes it ask again.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from .. import paths
from ..errors import ValidationError
from .runner import child_env

CACHE_FILE = "module-probe.json"
# The LyCORIS the kohya_ss GUI pins, and the one the real-training test runs: 4.1.3 stops on an SD U-Net
# in sd-scripts 48d368f ("duplicated lora name: lora_unet_time_embedding_linear_1").
LYCORIS_VERSION = "3.2.0.post2"
_PROBE = (
    "import importlib, json, os, sys\n"
    "name = sys.argv[1]\n"
    "try:\n"
    "    mod = importlib.import_module(name)\n"
    "    out = {'found': True, 'origin': os.path.dirname(os.path.abspath(mod.__file__))}\n"
    "except Exception as exc:\n"
    "    out = {'found': False, 'error': f'{type(exc).__name__}: {exc}'[:300]}\n"
    "print(json.dumps(out))\n"
)


def probe_module(
    python: str | os.PathLike, module: str, *, env: dict | None = None, cwd: str | None = None
) -> dict:
    """{"found": bool, "origin" | "error"} for `import module` in `python` with `env` (cached)."""
    exe = os.path.abspath(os.fspath(python))
    pythonpath = (env if env is not None else os.environ).get("PYTHONPATH", "")
    key = "\0".join((exe, module, pythonpath))
    cache = _read_cache()
    entry = cache.get(key)
    if isinstance(entry, dict) and entry.get("fingerprint") == fingerprint(
        exe, pythonpath, entry.get("origin")
    ):
        return entry
    answer = _ask(exe, module, env, cwd)
    answer["fingerprint"] = fingerprint(exe, pythonpath, answer.get("origin"))
    cache[key] = answer
    _write_cache(cache)
    return answer


def fingerprint(python: str, pythonpath: str, origin: str | None) -> list:
    exe = Path(python)
    watched = [exe]
    for prefix in (exe.parent, exe.parent.parent):
        watched += sorted(prefix.glob("lib*/python3*/site-packages")) + sorted(
            prefix.glob("Lib/site-packages")
        )
    watched += [Path(p) for p in pythonpath.split(os.pathsep) if p]
    if origin:
        watched += [Path(origin), Path(origin) / "__init__.py"]
    return [[str(p), *_stat(p)] for p in dict.fromkeys(watched)]


def _stat(path: Path) -> list:
    try:
        st = path.stat()
    except OSError:
        return [None, None]
    return [st.st_size, st.st_mtime_ns]


def _ask(python: str, module: str, env: dict | None, cwd: str | None) -> dict:
    try:
        proc = subprocess.run(
            [python, "-c", _PROBE, module],
            capture_output=True,
            text=True,
            timeout=300,
            env=child_env(env),
            cwd=cwd,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ValidationError(
            f"Could not run the sd-scripts python {python} ({exc}); set KOHYA_PYTHON to a working interpreter."
        ) from None
    lines = proc.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not isinstance(answer.get("found"), bool):
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        answer = {"found": False, "error": last[:300]}
    return answer


def _read_cache() -> dict:
    try:
        data = json.loads((paths.cache_dir() / CACHE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(cache: dict) -> None:
    """Replace the file in one step; a read-only cache folder is not an error (it asks again)."""
    path = paths.cache_dir() / CACHE_FILE
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(cache, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


def require_lycoris(
    python: str | os.PathLike, network_type: str, *, env: dict | None = None, cwd: str | None = None
) -> None:
    """A sentence saying how to install LyCORIS in the sd-scripts environment when it is missing."""
    answer = probe_module(python, "lycoris.kohya", env=env, cwd=cwd)
    if answer.get("found"):
        return
    raise ValidationError(
        f"network_type {network_type} trains with LyCORIS, which the sd-scripts environment ({python}) "
        f"cannot import ({answer.get('error', 'not installed')}). Install it there: {python} -m pip "
        f"install lycoris-lora=={LYCORIS_VERSION} - then queue the run again (or pick network_type lora, "
        f"locon or dylora)."
    )
