"""Attack, read by the real sd-scripts: a project folder whose name holds line breaks and TOML must not
inject arguments or subsets. The run files are written as for a training run, then sd-scripts' own
code (train_network's parser, read_config_from_file, config_util.load_user_config, toml 0.10.2) reads
them in its own environment. No training runs: this is parsing only (~15 s)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from lora_workbench.dataset import dataset_toml, prepare
from lora_workbench.training import train
from lora_workbench.training.options import TrainOptions
from tests.unit import train_fakes

pytestmark = pytest.mark.integration

EVIL = "proj\nlogging_dir = '/tmp/evil'\nnetwork_module = 'evil'\n[[datasets]]\n[[datasets.subsets]]\nimage_dir = '/etc'\n#"

READER = """
import json, sys
import train_network
from library import config_util, train_util
sys.argv = ["train_network.py", "--config_file", sys.argv[1]]  # as sd-scripts is started
parser = train_network.setup_parser()
args = parser.parse_args()
args = train_util.read_config_from_file(args, parser)
user = config_util.load_user_config(args.dataset_config)
print("RESULT " + json.dumps({
    "logging_dir": args.logging_dir, "network_module": args.network_module,
    "output_dir": args.output_dir, "dataset_config": args.dataset_config,
    "datasets": user.get("datasets"),
}, default=str))
"""


def test_sd_scripts_reads_no_injected_argument_or_subset(tmp_path, kohya_dir, kohya_python, test_checkpoint):
    project = train_fakes.make_project(tmp_path, name=EVIL)
    (project / "dataset.toml").unlink()
    prepare.prepare_dataset(project, prepare.DatasetOptions(resolution=(64, 64)))
    ds = dataset_toml.load_project_dataset(project)
    spec = TrainOptions(
        epochs=1, width=128, height=128, network_dim=4, network_alpha=4, device="cpu", launcher="python"
    )
    os.environ.setdefault("KOHYA_PYTHON", str(kohya_python))
    p = train.plan(spec, ds, test_checkpoint, kohya_root=kohya_dir, device="cpu")
    p.run_dir.mkdir(parents=True)
    train.write_run_files(p)  # config.toml and the patched dataset.toml copy, with headers
    scripts = kohya_dir if (kohya_dir / "train_network.py").is_file() else kohya_dir / "sd-scripts"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONIOENCODING="utf-8")
    proc = subprocess.run(
        [str(kohya_python), "-c", READER, str(p.run_dir / "config.toml")],
        cwd=scripts,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    got = json.loads(line[len("RESULT ") :])
    print(f"\nsd-scripts read: {json.dumps(got, indent=1)[:1500]}")
    assert got["network_module"] == "networks.lora"
    assert got["logging_dir"] in (None, "") or str(got["logging_dir"]).startswith(str(project))
    assert got["output_dir"] == str(p.run_dir) and got["dataset_config"] == str(p.run_dir / "dataset.toml")
    subsets = [s for d in got["datasets"] for s in d["subsets"]]
    assert len(got["datasets"]) == 1 and [s["image_dir"] for s in subsets] == [
        str(project / "images/1_subject")
    ]
    assert Path(subsets[0]["image_dir"]).is_dir()
