"""Training on the demo build's shards and task datasets on the CPU; GPU tests skip without one."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training.data import Batches, PackedShards
from training.finetune import FinetuneConfig, finetune
from training.pretrain import PretrainConfig, pretrain

from .conftest import REPO

pytestmark = pytest.mark.slow

TINY = {"hidden_size": 64, "layers": 2, "heads": 4, "intermediate_size": 128, "batch_size": 4,
        "eval_every": 5, "eval_batches": 2, "checkpoint_every": 5, "warmup_steps": 3}


def mask_id(summary) -> int:
    from flows.train import _mask_id

    found = _mask_id(Path(summary["tokenizer"]["path"]))
    assert found is not None
    return found


def test_batches_resume_where_they_stopped():
    a = Batches(100, 8, seed=1)
    first = [b.tolist() for _, b in zip(range(30), a, strict=False)]
    b = Batches(100, 8, seed=1)
    head = [x.tolist() for _, x in zip(range(17), b, strict=False)]
    c = Batches(100, 8, seed=1)
    c.load_state_dict(b.state_dict())
    tail = [x.tolist() for _, x in zip(range(13), c, strict=False)]
    assert head + tail == first
    assert sorted(i for batch in first[:12] for i in batch) == sorted(set(
        i for batch in first[:12] for i in batch))  # no row twice within an epoch


def test_shards_are_memory_mapped_and_verified(demo_build):
    _, summary = demo_build
    shards = PackedShards(summary["shard"]["path"], "train")
    shards.verify()
    row = shards.row(0)
    assert row.dtype.name == "uint16" and len(row) == shards.seq_len
    assert not row.flags.owndata  # a view into the mapped file, not a copy


@pytest.mark.parametrize("objective", ["causal", "masked"])
def test_loss_falls_on_the_demo_shards(demo_build, tmp_path, objective):
    _, summary = demo_build
    cfg = PretrainConfig(objective=objective, max_steps=40, lr=3e-3, **TINY)
    metrics = pretrain(cfg, summary["shard"]["path"], tmp_path, mask_id=mask_id(summary))
    losses = metrics["history"]["loss"]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.5
    val = metrics["history"]["val_loss"]
    assert val[-1] < val[0]
    assert (tmp_path / "final" / "model.safetensors").exists()
    assert (tmp_path / "final" / "config.json").exists()


def test_a_stopped_and_resumed_run_repeats_the_uninterrupted_losses(demo_build, tmp_path):
    _, summary = demo_build
    cfg = PretrainConfig(max_steps=14, grad_accum=2, **TINY)
    straight = pretrain(cfg, summary["shard"]["path"], tmp_path / "a")
    stopped = pretrain(cfg, summary["shard"]["path"], tmp_path / "b", stop_after=8)
    assert stopped["steps"] == 8 and not (tmp_path / "b" / "final").exists()
    resumed = pretrain(cfg, summary["shard"]["path"], tmp_path / "b")
    assert resumed["resumed_from_step"] == 8
    assert resumed["history"]["loss"] == straight["history"]["loss"]
    assert resumed["history"]["val_loss"] == straight["history"]["val_loss"]


def test_a_run_stopped_by_its_time_budget_resumes_to_the_same_losses(demo_build, tmp_path):
    _, summary = demo_build
    cfg = PretrainConfig(max_steps=8, **TINY)
    straight = pretrain(cfg, summary["shard"]["path"], tmp_path / "a")
    stopped = pretrain(cfg, summary["shard"]["path"], tmp_path / "b", time_budget_s=0.0)
    assert stopped["steps"] == 1 and (tmp_path / "b" / "step-000001").exists()
    assert not (tmp_path / "b" / "final").exists()
    resumed = pretrain(cfg, summary["shard"]["path"], tmp_path / "b")
    assert resumed["resumed_from_step"] == 1
    assert resumed["history"]["loss"] == straight["history"]["loss"]


def test_finetuning_both_tasks_from_a_pretrained_checkpoint(demo_build, tmp_path):
    _, summary = demo_build
    pretrain(PretrainConfig(max_steps=10, **TINY), summary["shard"]["path"], tmp_path / "pre")
    cfg = FinetuneConfig(steps=15, batch_size=8, max_length=128, eval_limit=200, seeds=2)
    imdb = finetune("imdb", cfg, tmp_path / "pre" / "final", summary["tasks"]["path"],
                    tmp_path / "ft")
    assert imdb["test"]["n"] == 200 and sum(map(sum, imdb["test"]["confusion"])) == 200
    # Two seeds scored on the same 200 reviews: the first seed's run is the headline row, and
    # the spread is over the seeds' accuracies.
    seeds = imdb["test"]["seeds"]
    assert seeds["seeds"] == [0, 1] and seeds["values"][0] == imdb["test"]["accuracy"]
    assert seeds["mean"] == pytest.approx(sum(seeds["values"]) / 2, abs=1e-4)
    assert seeds["sd"] == pytest.approx(abs(seeds["values"][0] - seeds["values"][1])
                                        / 2 ** 0.5, abs=1e-4)
    assert len(imdb["loss_by_seed"]) == 2 and imdb["loss_by_seed"][0] != imdb["loss_by_seed"][1]
    assert 0.0 <= imdb["test"]["accuracy"] <= 1.0
    # Intervals contain their point estimates; the baselines are scored on the same 200 test
    # reviews (the majority class gets about half of a balanced sample) and trained on the
    # same training split (a bag of pieces has real signal on IMDb).
    test = imdb["test"]
    low, high = test["accuracy_ci95"]
    assert low <= test["accuracy"] <= high and high - low < 0.2
    base = test["baselines"]
    for b in base.values():
        assert b["accuracy_ci95"][0] <= b["accuracy"] <= b["accuracy_ci95"][1]
    assert 0.35 < base["majority"]["accuracy"] < 0.65
    assert base["bag_of_pieces_logreg"]["accuracy"] > 0.65
    conll = finetune("conll2003", cfg, tmp_path / "pre" / "final", summary["tasks"]["path"],
                     tmp_path / "ft")
    assert conll["loss"][-1] < conll["loss"][0]
    assert set(conll["test"]["per_type"]) <= {"PER", "ORG", "LOC", "MISC"}
    lo, hi = conll["test"]["f1_ci95"]
    assert lo <= conll["test"]["f1"] <= hi
    tag = conll["test"]["baselines"]["most_frequent_tag"]
    assert tag["f1_ci95"][0] <= tag["f1"] <= tag["f1_ci95"][1] and tag["f1"] > 0.3
    assert (tmp_path / "ft" / "conll2003" / "model.safetensors").exists()


def test_ddp_under_torchrun_on_cpu(demo_build, tmp_path):
    _, summary = demo_build
    config = json.dumps({**TINY, "max_steps": 4})
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--master_port", "29517", "-m", "training.pretrain", "--shards",
         summary["shard"]["path"], "--out", str(tmp_path), "--config", config],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    assert metrics["world_size"] == 2 and metrics["steps"] == 4
    assert (tmp_path / "step-000004" / "model.safetensors").exists()


def test_sieve_train_prints_metrics_and_paths_as_json(demo_build, tmp_path):
    root, _ = demo_build
    text = (REPO / "recipes" / "demo.toml").read_text(encoding="utf-8")
    text = text.replace("max_steps = 120", "max_steps = 6").replace("steps = 300", "steps = 5")
    text = text.replace("[finetune]\n", "[finetune]\neval_limit = 200\n")
    recipe = REPO / "recipes" / f".test-train-{tmp_path.name}.toml"
    recipe.write_text(text, encoding="utf-8")
    try:
        from .conftest import run_sieve

        proc = run_sieve("train", str(recipe), "--root", str(root), "--json", "--quiet")
    finally:
        recipe.unlink()
    assert "[sieve]" not in proc.stderr  # --quiet: no stage lines, no progress
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["shard"]["cached"]  # the build was reused
    metrics = summary["report"]["metrics"]
    assert metrics["pretrain"]["steps"] == 6
    assert {"imdb", "conll2003"} <= set(metrics)
    # Bits per byte on the demo's neutral held-out set, with an interval over its documents,
    # and every task with its spread over the recipe's 3 fine-tuning seeds.
    pre = metrics["pretrain"]
    low, high = pre["held_out_bits_per_byte_ci95"]
    assert low <= pre["held_out_bits_per_byte"] <= high and pre["held_out_documents"] == 181
    assert summary["evaluate"]["counters"]["held_out_documents"] == 181
    for task, metric in (("imdb", "accuracy"), ("conll2003", "f1")):
        seeds = metrics[task]["seeds"]
        assert seeds["metric"] == metric and len(seeds["values"]) == 3
        assert seeds["min"] <= seeds["mean"] <= seeds["max"]
    report = (Path(summary["report"]["path"]) / "report.md").read_text(encoding="utf-8")
    assert "mean of 3 seeds" in report and "Held-out bits per byte" in report
    report = Path(summary["report"]["path"])
    assert (report / "report.md").exists() and (report / "loss.png").exists()
    assert json.loads((report / "report.json").read_text())["inputs"]["shard"] == \
        summary["shard"]["key"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_pretraining_runs_in_bf16_with_compile(demo_build, tmp_path):
    _, summary = demo_build
    metrics = pretrain(PretrainConfig(max_steps=10, **TINY), summary["shard"]["path"], tmp_path,
                       device="cuda")
    assert metrics["device"].startswith("cuda") and metrics["final_loss"] < 9
