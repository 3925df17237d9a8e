"""The pack's prediction of sd-scripts' bucket with bucket_no_upscale (dataset.checks.no_upscale_bucket,
which refuses an image whose bucket would be 0 pixels on a side) against sd-scripts' own BucketManager,
over a grid of image sizes and training resolutions: the same bucket, and None exactly where
sd-scripts divides by zero."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lora_workbench.dataset.checks import no_upscale_bucket

pytestmark = pytest.mark.integration

SIZES = [
    (w, h)
    for w in (40, 64, 72, 96, 120, 160, 300, 640, 1080, 1920, 4000)
    for h in (64, 72, 100, 120, 200, 480, 3000)
]
RESOLUTIONS = (64, 128, 512, 1024)
PROBE = """
import json, sys
from library.train_util import BucketManager
out = []
for w, h, res in json.loads(sys.argv[1]):
    bm = BucketManager(True, (res, res), 64, 2048, 64)
    try:
        out.append(list(bm.select_bucket(w, h)[0]))
    except ZeroDivisionError:
        out.append(None)
    except AssertionError:
        out.append("assert")
print(json.dumps(out))
"""


def test_the_predicted_no_upscale_bucket_is_sd_scripts_own(kohya_dir: Path, kohya_python: Path):
    scripts = kohya_dir if (kohya_dir / "train_network.py").is_file() else kohya_dir / "sd-scripts"
    cases = [(w, h, res) for w, h in SIZES for res in RESOLUTIONS if min(w, h) >= 64]
    run = subprocess.run(
        [str(kohya_python), "-c", PROBE, json.dumps(cases)],
        cwd=scripts,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    theirs = json.loads(run.stdout.strip().splitlines()[-1])
    ours = [no_upscale_bucket(w, h, res * res, 64) for w, h, res in cases]
    differ = [(c, o, t) for c, o, t in zip(cases, ours, theirs, strict=True) if (list(o) if o else None) != t]
    zero = sum(t is None for t in theirs)
    print(
        f"\n{len(cases)} sizes x resolutions: {len(cases) - len(differ)} agree, {zero} are 0-pixel buckets in sd-scripts"
    )
    assert not differ, differ[:10]
