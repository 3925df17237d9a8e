"""Parsing sd-scripts' real console output (captures in tests/fixtures/sdscripts/)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from lora_workbench.training.progress import (
    ProgressParser,
    clean_record,
    format_seconds,
    hms_to_seconds,
    losses_per_step,
    parse_text,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sdscripts"
CAPTURES = ["sdscripts_default", "sdscripts_console_log_simple"]
REAL_LOSSES = [(1, 1.22), (2, 1.27), (3, 1.29), (4, 1.25), (5, 1.23), (6, 1.22), (7, 1.21), (8, 1.2)]


def capture(name: str) -> tuple[str, str]:
    out = (FIXTURES / f"{name}.stdout.log").read_text(encoding="utf-8")
    err = (FIXTURES / f"{name}.stderr.log").read_text(encoding="utf-8")
    return out, err


def kinds(events, kind):
    return [e for e in events if e.kind == kind]


@pytest.mark.parametrize("name", CAPTURES)
def test_real_capture_gives_steps_total_losses_epoch_and_saved_path(name):
    out, err = capture(name)
    events = parse_text(out, err)
    steps = kinds(events, "step")
    # 0/8 at start, two refreshes per step, and the bar's final repeat on close.
    assert len(steps) == 1 + 2 * 8 + 1
    assert [s.step for s in steps][:3] == [0, 1, 1]
    assert {s.total for s in steps} == {8}
    assert steps[0].loss is None and steps[0].remaining is None and steps[0].rate == "?it/s"
    assert steps[1].loss is None  # step 1's update(1) refresh has no postfix yet
    assert steps[-1].loss == 1.2 and steps[-1].elapsed == 10.0 and steps[-1].remaining == 0.0
    assert steps[-1].rate == "1.34s/it" and steps[-1].it_per_s == pytest.approx(1 / 1.34)
    assert losses_per_step(events) == REAL_LOSSES
    assert [e.total for e in kinds(events, "total")] == [8]
    assert [(e.epoch, e.epochs) for e in kinds(events, "epoch")] == [(1, 1)]
    assert [e.epochs for e in kinds(events, "epochs")] == [1]
    saved = [e.path for e in kinds(events, "saved")]
    assert len(saved) == 1 and saved[0].startswith("$HARNESS_HOME/train-out/")
    assert saved[0].endswith("/testlora.safetensors")
    assert len(kinds(events, "model_saved")) == 1
    assert not kinds(events, "no_data") and not kinds(events, "error_line")


def test_unlabelled_and_read_caption_bars_are_not_training_steps():
    _, err = capture("sdscripts_default")
    before_training = err.split("steps:   0%")[0]
    assert "read caption:" in before_training and "| 4/4" in before_training
    assert parse_text(stderr=before_training) == []


def test_record_glued_to_a_bar_is_still_seen():
    _, err = capture("sdscripts_default")
    # "...avr_loss=1.2] 2026-11-25 03:02:48 INFO     model saved.   train_network.py:1729"
    assert "avr_loss=1.2] 2026-" in err
    events = parse_text(stderr=err, emit_lines=True)
    lines = [e.text for e in kinds(events, "line")]
    assert "INFO model saved." in lines
    assert "INFO epoch is incremented." in lines
    assert not any("steps:" in t or "%|" in t for t in lines)


@pytest.mark.parametrize("name", CAPTURES)
def test_feeding_in_random_chunks_gives_the_same_events(name):
    out, err = capture(name)
    whole = ProgressParser(emit_lines=True)
    expected = whole.feed(out, "stdout") + whole.feed(err, "stderr") + whole.flush()
    rng = random.Random(7)
    for _ in range(5):
        parser = ProgressParser(emit_lines=True)
        got = []
        for stream, text in (("stdout", out), ("stderr", err)):
            i = 0
            while i < len(text):
                n = rng.choice([1, 2, 3, 7, 50, 400, 4096])
                got += parser.feed(text[i : i + n], stream)
                i += n
        got += parser.flush()
        assert [e.to_dict() for e in got] == [e.to_dict() for e in expected]


def test_interleaved_streams_keep_their_own_partial_lines():
    p = ProgressParser()
    ev = p.feed("\nepoch 1/", "stdout")
    ev += p.feed("\rsteps:  50%|█████     | 1/2 [00:01<00:01,  1.00s/it, avr_lo", "stderr")
    ev += p.feed("3\n", "stdout")
    ev += p.feed("ss=0.5]", "stderr")
    assert [(e.kind, e.epoch, e.step, e.loss) for e in ev] == [
        ("epoch", 1, None, None),
        ("step", None, 1, 0.5),
    ]


def test_a_bar_refresh_is_reported_before_its_line_ends():
    p = ProgressParser()
    ev = p.feed("\rsteps:  25%|██▌       | 2/8 [00:03<00:09,  1.63s/it, avr_loss=1.27]")
    assert [(e.step, e.total, e.loss) for e in ev] == [(2, 8, 1.27)]
    assert p.feed("\rsteps:  38%") == []  # incomplete refresh: nothing yet


def test_it_per_s_and_s_per_it_rates():
    ev = parse_text(
        stderr="\rsteps:  50%|█████     | 50/100 [00:12<00:12,  4.20it/s, avr_loss=0.0834]"
        "\rsteps:  51%|█████     | 51/100 [00:12<00:12,  2.50s/it, avr_loss=0.0834]\n"
    )
    fast, slow = ev
    assert fast.rate == "4.20it/s" and fast.it_per_s == pytest.approx(4.2)
    assert slow.rate == "2.50s/it" and slow.it_per_s == pytest.approx(0.4)
    assert fast.loss == pytest.approx(0.0834) and fast.elapsed == 12.0 and fast.remaining == 12.0


def test_hours_in_elapsed_and_remaining_and_exponent_loss():
    ev = parse_text(
        stderr="\rsteps:  10%|█         | 100/1000 [1:02:03<9:18:27, 37.23s/it, avr_loss=1.23e-5] \n"
    )
    (e,) = ev
    assert e.elapsed == 3723.0 and e.remaining == 9 * 3600 + 18 * 60 + 27
    assert e.loss == pytest.approx(1.23e-5)


def test_nan_loss_is_kept_as_nan():
    ev = parse_text(stderr="\rsteps:  20%|██        | 1/5 [00:01<00:04,  1.00s/it, avr_loss=nan]\n")
    assert math.isnan(ev[0].loss)
    assert math.isnan(losses_per_step(ev)[0][1])


def test_validation_bar_is_not_a_training_step():
    ev = parse_text(
        stderr="\rvalidation steps: 100%|██████████| 4/4 [00:01<00:00,  3.00it/s, val_loss=0.2]\n"
        "\rsteps:  50%|█████     | 4/8 [00:05<00:05,  1.44s/it, avr_loss=1.25]\n"
    )
    assert [(e.kind, e.step) for e in ev] == [("step", 4)]


def test_other_postfix_keys_do_not_hide_the_loss():
    ev = parse_text(
        stderr="\rsteps:  50%|█████     | 4/8 [00:05<00:05,  1.44s/it, avr_loss=1.25, "
        "Keys Scaled=3, Average key norm=0.5]\n"
    )
    assert ev[0].loss == 1.25


def test_no_data_found_and_traceback_lines():
    text = (
        "2026-11-25 03:02:23 ERROR    No data found. Please verify arguments (train_data_dir must be "
        "the parent of folders with images)   train_network.py:577\n"
        'Traceback (most recent call last):\n  File "x.py", line 1, in <module>\n'
        "ValueError: fp16 mixed precision requires a GPU\n"
    )
    ev = parse_text(stderr=text)
    assert [e.kind for e in ev] == ["no_data", "error_line", "error_line", "error_line"]
    assert ev[1].text.startswith("ERROR No data found.")
    assert ev[3].text == "ValueError: fp16 mixed precision requires a GPU"


def test_sample_generation_line():
    ev = parse_text(
        stderr="2026-11-25 03:02:23 INFO     generating sample images at step / "
        "サンプル画像生成 ステップ: 100     train_util.py:6394\n"
    )
    assert [(e.kind, e.step) for e in ev] == [("sample", 100)]


def test_clean_record_drops_time_and_source_columns():
    assert (
        clean_record("2026-11-25 03:02:23 INFO     Using v1 tokenizer                strategy_sd.py:26")
        == "INFO Using v1 tokenizer"
    )
    assert (
        clean_record("                    WARNING  no regularization images   train_util.py:2167")
        == "WARNING no regularization images"
    )
    assert clean_record('  File "x.py", line 1  ') == '  File "x.py", line 1'


def test_time_helpers():
    assert hms_to_seconds("00:13") == 13 and hms_to_seconds("?") is None and hms_to_seconds("1:00:01") == 3601
    assert format_seconds(16) == "0:16" and format_seconds(3723) == "1:02:03" and format_seconds(None) == "?"


def test_runner_log_of_a_real_accelerate_run_parses_as_one_stream():
    # Captured by tests/integration/test_runner_real.py: accelerate launch, --dataset_config,
    # --max_train_steps 8, COLUMNS=250 (no rich wrapping), stdout and stderr merged as the runner logs them.
    text = (FIXTURES / "runner_accelerate_default.log").read_text(encoding="utf-8")
    events = parse_text(stderr=text)
    assert losses_per_step(events) == REAL_LOSSES
    assert [e.total for e in kinds(events, "total")] == [8]
    assert [(e.epoch, e.epochs) for e in kinds(events, "epoch")] == [(1, 1)]
    assert [e.path for e in kinds(events, "saved")] == ["$TMP/output/testlora.safetensors"]
    assert len(kinds(events, "model_saved")) == 1
    lines = [e.text for e in kinds(parse_text(stderr=text, emit_lines=True), "line")]
    assert "INFO Using v1 tokenizer" in lines  # one record per line at 250 columns


# musubi-tuner's training loop (src/musubi_tuner/training/trainer_base.py at 30c658c4): accelerator.print
# for the banner, `epoch N/M` and `saving checkpoint:`, logging.basicConfig records, and the tqdm
# `steps` bar with avr_loss (plus its max-norm keys when scale_weight_norms is set).
MUSUBI_STDOUT = (
    "running training / 学習開始\n"
    "  num train items / 学習画像、動画数: 4\n"
    "  num batches per epoch / 1epochのバッチ数: 2\n"
    "  num epochs / epoch数: 2\n"
    "  total optimization steps / 学習ステップ数: 4\n"
    "\nepoch 1/2\n"
    "\nsaving checkpoint: /runs/w-001/w-000001.safetensors\n"
    "\nepoch 2/2\n"
)
MUSUBI_STDERR = (
    "INFO:musubi_tuner.wan_train_network:Loading DiT model from /models/wan.safetensors\n"
    "\rsteps:   0%|          | 0/4 [00:00<?, ?it/s]"
    "\rsteps:  25%|██▌       | 1/4 [00:03<00:09,  3.02s/it]"
    "\rsteps:  25%|██▌       | 1/4 [00:03<00:09,  3.02s/it, avr_loss=0.211]"
    "\rsteps:  50%|█████     | 2/4 [00:06<00:06,  3.01s/it, avr_loss=0.205, Keys Scaled=0, Average key norm=0.1]"
    "\rsteps: 100%|██████████| 4/4 [00:12<00:00,  3.00s/it, avr_loss=0.198]\n"
    "INFO:musubi_tuner.training.trainer_base:model saved.\n"
)


def test_musubi_training_output_gives_steps_losses_epochs_and_saved_paths():
    events = parse_text(MUSUBI_STDOUT, MUSUBI_STDERR)
    assert losses_per_step(events) == [(1, 0.211), (2, 0.205), (4, 0.198)]
    assert [e.total for e in kinds(events, "total")] == [4]
    assert [e.epochs for e in kinds(events, "epochs")] == [2]
    assert [(e.epoch, e.epochs) for e in kinds(events, "epoch")] == [(1, 2), (2, 2)]
    assert [e.path for e in kinds(events, "saved")] == ["/runs/w-001/w-000001.safetensors"]
    assert len(kinds(events, "model_saved")) == 1 and not kinds(events, "error_line")


def test_plain_logging_records_read_like_rich_ones():
    assert clean_record("INFO:musubi_tuner.cache_latents:Loading VAE   model") == "INFO Loading VAE model"
    assert clean_record("ERROR:musubi_tuner.x:file not found") == "ERROR file not found"
    events = parse_text("", "ERROR:musubi_tuner.qwen_image_train_network:DiT file is fp8 scaled\n")
    assert [e.text for e in kinds(events, "error_line")] == ["ERROR DiT file is fp8 scaled"]


def test_a_count_parser_reads_any_bar_totalled_or_not_and_never_a_loss():
    text = (
        "INFO:musubi_tuner.cache_latents:Encoding 12 images\n"
        "\r0it [00:00, ?it/s]\r5it [00:03,  1.50it/s]"
        "\rsteps:  25%|██▌       | 3/12 [00:01<00:03,  2.90it/s]"
        "\r100%|██████████| 12/12 [00:04<00:00,  2.90it/s]\n"
    )
    p = ProgressParser(emit_lines=True, bar="count")
    events = p.feed(text) + p.flush()
    counts = [(e.step, e.total, e.rate) for e in kinds(events, "count")]
    assert counts == [(0, None, "?it/s"), (5, None, "1.50it/s"), (3, 12, "2.90it/s"), (12, 12, "2.90it/s")]
    assert all(e.loss is None for e in kinds(events, "count")) and not kinds(events, "step")
    assert [e.text for e in kinds(events, "line")] == ["INFO Encoding 12 images"]


def test_a_count_parser_gives_the_same_counts_in_any_chunking():
    text = "\r1it [00:01,  1.00it/s]\r2it [00:02,  1.00it/s]\r 50%|#####     | 2/4 [00:02<00:02,  1.00it/s]"
    whole = [e.to_dict() for e in ProgressParser(bar="count").feed(text)]
    for seed in range(5):
        rng, p, got, i = random.Random(seed), ProgressParser(bar="count"), [], 0
        while i < len(text):
            n = rng.randint(1, 9)
            got += [e.to_dict() for e in p.feed(text[i : i + n])]
            i += n
        assert got == whole
