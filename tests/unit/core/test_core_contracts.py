"""The small shared contracts: event bus, data objects, safetensors header reader."""

import json
import struct

import pytest

from lora_workbench import events
from lora_workbench.datatypes import DatasetSubset, LoraDataset, TrainedLora
from lora_workbench.errors import WorkbenchError
from lora_workbench.modelfiles.safetensors_header import read_header, write_safetensors_header_only


def test_events_reach_listeners_and_keep_the_latest():
    got = []
    unsubscribe = events.subscribe(lambda e, d: got.append((e, d)))
    events.publish(events.TRAIN, {"step": 1})
    events.publish(events.TRAIN, {"step": 2})
    unsubscribe()
    events.publish(events.TRAIN, {"step": 3})
    assert got == [(events.TRAIN, {"step": 1}), (events.TRAIN, {"step": 2})]
    assert events.latest(events.TRAIN) == {"step": 3}
    assert events.latest(events.LIBRARY) is None


def test_a_broken_listener_never_breaks_the_publisher():
    def boom(e, d):
        raise RuntimeError("listener bug")

    events.subscribe(boom)
    events.publish(events.LIBRARY, {"created": 1})
    assert events.latest(events.LIBRARY) == {"created": 1}


def test_lora_dataset_round_trips_through_json():
    ds = LoraDataset(
        project_dir="/p",
        toml_path="/p/dataset.toml",
        resolution=(512, 768),
        enable_bucket=False,
        batch_size=2,
        subsets=[
            DatasetSubset("Subject", "/p/images/3_Subject", 5, 3, class_tokens="sbj"),
            DatasetSubset("person", "/p/regularization/1_person", 10, 1, class_tokens="person", is_reg=True),
        ],
        items_per_epoch=30,
        steps_per_epoch=15,
        fingerprint="abc",
    )
    back = LoraDataset.from_dict(json.loads(json.dumps(ds.to_dict())))
    assert back == ds
    assert back.class_tokens == ["sbj"]
    assert back.subsets[0].items == 15


def test_trained_lora_round_trips():
    t = TrainedLora(path="/o/x.safetensors", epoch_paths=["/o/x-000001.safetensors"], trigger_words=["sbj"])
    assert TrainedLora.from_dict(t.to_dict()) == t


def test_header_reader_reads_names_shapes_and_metadata(tmp_path):
    f = tmp_path / "m.safetensors"
    write_safetensors_header_only(f, {"a.weight": ("F16", [4, 8]), "b": ("F32", [])}, {"ss_output_name": "x"})
    h = read_header(f)
    assert h.keys() == ["a.weight", "b"]
    assert h.shape("a.weight") == [4, 8]
    assert h.metadata == {"ss_output_name": "x"}
    assert f.stat().st_size == 8 + struct.unpack("<Q", f.read_bytes()[:8])[0] + 4 * 8 * 2 + 4


def test_header_reader_is_real_safetensors_compatible(tmp_path):
    safetensors = pytest.importorskip("safetensors.numpy")
    np = pytest.importorskip("numpy")
    f = tmp_path / "real.safetensors"
    safetensors.save_file({"w": np.zeros((2, 3), dtype=np.float32)}, str(f), metadata={"k": "v"})
    h = read_header(f)
    assert h.shape("w") == [2, 3] and h.metadata == {"k": "v"}


@pytest.mark.parametrize(
    "content", [b"", b"\x05\x00\x00\x00\x00\x00\x00\x00abc", b"\xff" * 16, struct.pack("<Q", 4) + b"nope"]
)
def test_header_reader_names_a_file_that_is_not_safetensors(tmp_path, content):
    f = tmp_path / "bad.safetensors"
    f.write_bytes(content)
    with pytest.raises(WorkbenchError, match="bad.safetensors"):
        read_header(f)


def test_header_reader_names_a_missing_file(tmp_path):
    with pytest.raises(WorkbenchError, match="does not exist"):
        read_header(tmp_path / "missing.safetensors")
