"""Does torch in the sd-scripts environment see a GPU, and how much memory has it? Asked once per
environment, then remembered.

Asking means starting that Python and importing torch: a second or more, on every run. So the answer
is kept in `paths.cache_dir()/device-probe.json` under the interpreter's path, with a fingerprint
taken without starting anything: the interpreter file, the environment's site-packages folders,
torch's own folder and files (where the probe found it), the variables that decide what torch sees
(CUDA_VISIBLE_DEVICES, PYTHONPATH, ...) and the NVIDIA driver version. Installing or removing a
package there (another torch included), a new driver or hidden GPUs make it ask again.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from .. import paths
from ..errors import ValidationError
from .runner import child_env

CACHE_FILE = "device-probe.json"
DEVICES = ("gpu", "cpu")
# What changes the answer without changing a file of the environment.
ENV_KEYS = (
    "CUDA_VISIBLE_DEVICES",
    "HIP_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
    "PYTORCH_ENABLE_MPS_FALLBACK",
    "PYTHONPATH",
    "PYTHONHOME",
)
NVIDIA_DRIVER = "/proc/driver/nvidia/version"
GPU_MEMORY_ENV = "LORA_WORKBENCH_GPU_MEMORY_GIB"  # the GPU's memory when the probe cannot see it

# Runs in the sd-scripts Python: the answer (with CUDA device 0's memory), and where its torch lives.
_PROBE = (
    "import json, os, torch; mps = getattr(torch.backends, 'mps', None); cuda = torch.cuda.is_available(); "
    "gpu = cuda or (mps is not None and mps.is_available()); "
    "print(json.dumps({'device': 'gpu' if gpu else 'cpu', 'torch': torch.__version__, "
    "'gpu_bytes': torch.cuda.get_device_properties(0).total_memory if cuda else 0, "
    "'torch_dir': os.path.dirname(os.path.abspath(torch.__file__))}))"
)


def probe_device(
    python: str | os.PathLike, trainer: str = "sd-scripts", python_env: str = "KOHYA_PYTHON"
) -> str:
    """ "gpu" when torch in `python`'s environment sees CUDA (or MPS), else "cpu"; a sentence-shaped
    ValidationError naming the trainer and its python variable when that Python cannot run or cannot
    import torch."""
    key = _key(python)
    cache = _read_cache()
    entry = _valid(cache.get(key), key)
    if entry is None:
        entry = _ask(key, trainer, python_env)
        entry["fingerprint"] = fingerprint(key, entry["torch_dir"])
        cache[key] = entry
        _write_cache(cache)
    return entry["device"]


def gpu_memory_gib(python: str | os.PathLike) -> float | None:
    """The training GPU's memory in GiB: $LORA_WORKBENCH_GPU_MEMORY_GIB, else what the probe saw of
    CUDA device 0 in that environment (when it has been asked), else None (no estimate verdict)."""
    value = os.environ.get(GPU_MEMORY_ENV, "")
    if value:
        try:
            return float(value)
        except ValueError:
            return None
    key = _key(python)
    entry = _valid(_read_cache().get(key), key)
    gpu_bytes = entry.get("gpu_bytes") if entry else None
    return gpu_bytes / 1024**3 if isinstance(gpu_bytes, int) and gpu_bytes > 0 else None


def _key(python: str | os.PathLike) -> str:
    return os.path.abspath(os.fspath(python))


def _valid(entry, python: str) -> dict | None:
    """A remembered answer that still holds for `python`, else None."""
    if not isinstance(entry, dict) or entry.get("device") not in DEVICES:
        return None
    return entry if entry.get("fingerprint") == fingerprint(python, entry.get("torch_dir")) else None


def fingerprint(python: str, torch_dir: str | None) -> list:
    """What must stay the same for a remembered answer to hold (stat results, variables, driver)."""
    exe = Path(python)
    watched = [exe]
    # <env>/bin/python, <env>/Scripts/python.exe (Windows venv), <env>/python.exe (conda on Windows)
    for prefix in (exe.parent, exe.parent.parent):
        watched += sorted(prefix.glob("lib*/python3*/site-packages"))
        watched += sorted(prefix.glob("Lib/site-packages"))
    if torch_dir:
        torch = Path(torch_dir)
        watched += [torch.parent, torch, torch / "version.py", torch / "__init__.py"]
    files = [[str(p), *_stat(p)] for p in dict.fromkeys(watched)]
    variables = {k: os.environ[k] for k in ENV_KEYS if k in os.environ}
    return [files, variables, _read_small(NVIDIA_DRIVER)]


def _stat(path: Path) -> list:
    try:
        st = path.stat()
    except OSError:
        return [None, None]
    return [st.st_size, st.st_mtime_ns]


def _read_small(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(4096)
    except OSError:
        return None


def _ask(python: str, trainer: str = "sd-scripts", python_env: str = "KOHYA_PYTHON") -> dict:
    """Start `python`, import torch, and return {"device", "torch", "torch_dir", "gpu_bytes"}."""
    try:
        proc = subprocess.run(
            [python, "-c", _PROBE], capture_output=True, text=True, timeout=180, env=child_env(None)
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ValidationError(
            f"Could not run the {trainer} python {python} ({exc}); set {python_env} to a working interpreter."
        ) from None
    lines = proc.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if proc.returncode == 0 and lines else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or answer.get("device") not in DEVICES:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ValidationError(
            f"The {trainer} python {python} cannot import torch ({last}); install {trainer}'s "
            f"requirements in that environment or set {python_env} to the right interpreter."
        )
    gpu_bytes = answer.get("gpu_bytes")
    return {
        "device": answer["device"],
        "torch": str(answer.get("torch", "")),
        "torch_dir": answer.get("torch_dir"),
        "gpu_bytes": gpu_bytes if isinstance(gpu_bytes, int) else 0,
    }


def _cache_path() -> Path:
    return paths.cache_dir() / CACHE_FILE


def _read_cache() -> dict:
    """The remembered answers; an unreadable or damaged file is no answers (it is rewritten)."""
    try:
        data = json.loads(_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(cache: dict) -> None:
    """Replace the file in one step (a reader never sees half of it); a read-only cache is not an error."""
    path = _cache_path()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(cache, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
