"""Data mixtures: `[mix]` validated at load, the mix stage's plan on the demo's real shards, and
training that reads exactly the plan on any number of ranks (issue 19)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipelines.recipe import RecipeError, load_recipe
from training.mixture import GlobalOrder, MixtureError, make_plan, rank_rows

from .conftest import REPO, build_json, free_port, run_sieve

MIX_RECIPE = REPO / "recipes" / "mix.toml"
MIX = {"total_tokens": 256 * 800, "global_batch_tokens": 256 * 8, "seed": 0,
       "sources": {"wikipedia": {"weight": 0.3, "max_repeat": 4}, "web": {"weight": 0.5,
                   "max_repeat": 4}, "imdb": {"weight": 0.2}}}
AVAILABLE = {"wikipedia": 150, "web": 133, "imdb": 3832, "conll2003": 1514}
TINY = {"hidden_size": 32, "layers": 1, "heads": 2, "intermediate_size": 64, "batch_size": 2,
        "eval_every": 3, "eval_batches": 1, "checkpoint_every": 3, "warmup_steps": 1}


def recipe_with(tmp_path: Path, mix: str, seq_len: int = 256) -> Path:
    """recipes/mix.toml with its [mix] section replaced (source paths made absolute)."""
    text = MIX_RECIPE.read_text(encoding="utf-8").replace("../../shared",
                                                          str(REPO.parent / "shared"))
    head, rest = text.split("[mix]\n", 1)
    rest = rest[rest.index("[tokenizer]"):].replace("seq_len = 256", f"seq_len = {seq_len}")
    path = tmp_path / "recipe.toml"
    path.write_text(head + mix + "\n" + rest, encoding="utf-8")
    return path


@pytest.mark.parametrize(("mix", "message"), [
    ("[mix]\ntotal_tokens = 20480\nglobal_batch_tokens = 2048\n"
     "[mix.sources.wikipedia]\nweight = 0.5\n[mix.sources.imdb]\nweight = 0.4\n",
     "weights sum to 0.9, not 1"),
    ("[mix]\ntotal_tokens = 20480\nglobal_batch_tokens = 2048\n"
     "[mix.sources.wikipedia]\nweight = 0.5\n[mix.sources.reddit]\nweight = 0.5\n",
     "['reddit'] are not sources of this recipe"),
    ("[mix]\ntotal_tokens = 20480\nglobal_batch_tokens = 2000\n"
     "[mix.sources.wikipedia]\nweight = 1.0\n", "not a multiple of seq_len 256"),
    ("[mix]\ntotal_tokens = 20480\nglobal_batch_tokens = 2048\nseq_len = 512\n"
     "[mix.sources.wikipedia]\nweight = 1.0\n", "differs from [shard] seq_len 256"),
    ("[mix]\ntotal_tokens = 20480\nglobal_batch_tokens = 2048\n"
     "[mix.sources.wikipedia]\nweight = 1.0\n[[mix.stages]]\nfrom_tokens = 3000\n"
     "weights = {wikipedia = 1.0}\n", "multiples of global_batch_tokens"),
    ("[mix]\ntotal_tokens = 20480\nglobal_batch_tokens = 2048\n"
     "[mix.sources.wikipedia]\nweight = 0.5\n[mix.sources.imdb]\nweight = 0.5\n"
     "[[mix.stages]]\nfrom_tokens = 4096\nweights = {wikipedia = 0.7}\n", "not 1"),
    ("[mix]\ntotal_tokens = 20480\n", "needs sources"),
    ("[mix]\nglobal_batch_tokens = 2048\n[mix.sources.wikipedia]\nweight = 1.0\n",
     "needs total_tokens and global_batch_tokens"),
])
def test_a_bad_mix_section_fails_when_the_recipe_loads(tmp_path, mix, message):
    with pytest.raises(RecipeError) as err:
        load_recipe(recipe_with(tmp_path, mix))
    assert message in str(err.value) and "recipe.toml" in str(err.value)


def test_planned_shares_meet_the_target_and_nothing_repeats_past_its_cap():
    plan = make_plan(AVAILABLE, MIX, 256)
    assert plan["steps"] == 100 and plan["total_sequences"] == 800
    for name, s in plan["sources"].items():
        assert abs(s["planned_share"] - s["target_share"]) <= 0.005, name
        assert s["planned_sequences"] <= s["available_sequences"] * s["max_repeat"]
    order = GlobalOrder(plan)
    names = plan["source_names"]
    for s, name in enumerate(names):
        rows = order.row[order.source == s]
        n = plan["sources"][name]["available_sequences"]
        assert len(rows) == plan["sources"][name]["planned_sequences"]
        # Each epoch is a permutation: no sequence repeats before all of them were read once.
        for e in range(0, len(rows), n):
            assert len(set(rows[e:e + n].tolist())) == len(rows[e:e + n])
        assert Counter(rows.tolist()).most_common(1)[0][1] <= int(np.ceil(len(rows) / n))
    # Every global batch holds the sources close to their weights (largest deficit).
    batch = order.source[:8].tolist()
    assert batch.count(names.index("web")) == 4 and batch.count(names.index("imdb")) in (1, 2)
    assert "conll2003" not in plan["sources"]  # unweighted: never read
    again = make_plan(dict(reversed(list(AVAILABLE.items()))), MIX, 256)
    assert again["plan_id"] == plan["plan_id"]  # stable hashes and the seed only
    assert make_plan(AVAILABLE, {**MIX, "seed": 1}, 256)["order_sha256"] != plan["order_sha256"]


def test_an_infeasible_mixture_names_the_source_what_it_has_and_what_it_needs():
    with pytest.raises(MixtureError) as err:
        make_plan(AVAILABLE, {**MIX, "total_tokens": 256 * 8000}, 256)
    message = str(err.value)
    assert "source 'web'" in message and "133 train sequences (34,048 tokens)" in message
    assert "needs 4,000 sequences (1,024,000 tokens, 30.08 epochs)" in message
    assert "max_repeat 4" in message
    capped = {**MIX, "sources": {**MIX["sources"], "imdb": {"weight": 0.2,
                                                              "max_fraction": 0.01}}}
    with pytest.raises(MixtureError, match="source 'imdb'.*max_fraction 0.01"):
        make_plan(AVAILABLE, capped, 256)
    with pytest.raises(MixtureError, match=r"\['reddit'\] have no train shards"):
        make_plan(AVAILABLE, {**MIX, "sources": {"reddit": {"weight": 1.0}}}, 256)


def test_the_order_does_not_depend_on_the_rank_count_and_a_new_stage_keeps_the_past():
    plan = make_plan(AVAILABLE, MIX, 256)
    for world in (1, 2, 4, 8):
        for step in (0, 7, 99):
            parts = [rank_rows(plan, step, r, world) for r in range(world)]
            assert np.array_equal(np.concatenate(parts), np.arange(step * 8, step * 8 + 8))
    with pytest.raises(MixtureError, match="does not split over 3 ranks"):
        rank_rows(plan, 0, 0, 3)
    staged = {**MIX, "stages": [{"from_tokens": 256 * 8 * 40,
                                 "weights": {"wikipedia": 0.6, "web": 0.2, "imdb": 0.2}}]}
    new = make_plan(AVAILABLE, staged, 256)
    a, b = GlobalOrder(plan), GlobalOrder(new)
    assert a.prefix_sha256(320) == b.prefix_sha256(320)  # the first 40 batches are the same
    assert not np.array_equal(a.source[320:], b.source[320:])
    second = new["stages"][1]["sequences"]
    assert abs(second["wikipedia"] / 480 - 0.6) < 0.005


# ---- on the demo's real shards ----------------------------------------------------------

@pytest.fixture(scope="module")
def mix_build(demo_build):
    """recipes/mix.toml built into the demo's root: every stage up to shard is the demo's."""
    root, demo = demo_build
    summary = build_json(MIX_RECIPE, root, "--until", "mix")
    assert summary["shard"]["key"] == demo["shard"]["key"]
    return root, summary, demo


def test_mix_stage_plans_the_recipe_on_the_real_shards(mix_build):
    _, summary, demo = mix_build
    plan = json.loads((Path(summary["mix"]["path"]) / "mixture.json").read_text())
    index = json.loads((Path(summary["shard"]["path"]) / "index.json").read_text())
    for name, s in plan["sources"].items():
        assert s["available_sequences"] == index["sources"][name]["train"]["sequences"]
        assert abs(s["planned_share"] - s["target_share"]) <= 0.005
    assert plan["sources"]["commoncrawl"]["repeated_sequences"] > 0  # the small web repeats
    assert plan["neutral"]["documents"] == 181  # Scrapinghub's held-out articles
    counters = summary["mix"]["counters"]
    assert counters["in"] == sum(v["train"]["sequences"] for v in index["sources"].values())
    assert counters["dropped:unweighted_source"] == index["sources"]["conll2003"]["train"][
        "sequences"]
    # Without [mix], the demo's plan is natural proportions: every train sequence once.
    natural = json.loads((Path(demo["mix"]["path"]) / "mixture.json").read_text())
    assert natural["natural"] and demo["mix"]["counters"]["out"] == counters["in"]
    # index.json: each file's source, and per source and split its sequences.
    for shard in index["shards"]:
        assert shard["path"].split("/")[1].startswith(f"part-{shard['source']}-")


def test_every_shard_file_still_loads_in_datasets_and_pyarrow(mix_build):
    import datasets
    import pyarrow as pa

    _, summary, _ = mix_build
    folder = Path(summary["shard"]["path"])
    index = json.loads((folder / "index.json").read_text())
    for split in ("train", "validation"):
        files = [str(folder / s["path"]) for s in index["shards"] if s["split"] == split]
        ds = datasets.load_dataset("arrow", data_files={split: files}, split=split,
                                   cache_dir=str(folder.parent / ".hf-cache"))
        assert len(ds) == index["totals"][split]["rows"]
        rows = sum(pa.ipc.open_stream(pa.memory_map(f)).read_all().num_rows for f in files)
        assert rows == index["totals"][split]["rows"]


def test_an_infeasible_recipe_fails_the_build_naming_the_source(mix_build, tmp_path):
    root, _, _ = mix_build
    text = MIX_RECIPE.read_text(encoding="utf-8").replace("total_tokens = 204_800",
                                                          "total_tokens = 409_600")
    recipe = REPO / "recipes" / f".test-mix-{tmp_path.name}.toml"
    recipe.write_text(text, encoding="utf-8")
    try:
        proc = run_sieve("build", str(recipe), "--root", str(root), "--until", "mix",
                         check=False)
    finally:
        recipe.unlink()
    assert proc.returncode != 0
    assert ("insufficient tokens for source 'commoncrawl': it has 7 train sequences "
            "(1,792 tokens)") in proc.stderr
    assert "needs 64 sequences (16,384 tokens, 9.14 epochs), more than max_repeat 5" \
        in proc.stderr


def _pretrain(shards: str, mix: str, out: Path, world: int, steps: int) -> dict:
    command = ["-m", "training.pretrain", "--shards", shards, "--mixture", mix, "--out",
               str(out), "--config", json.dumps(TINY), "--read-log", "--stop-after", str(steps)]
    if world > 1:
        command = ["-m", "torch.distributed.run", "--nproc_per_node", str(world),
                   "--master_port", str(free_port()), *command]
    proc = subprocess.Popen([sys.executable, *command], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:  # the launcher and its ranks, not the launcher alone
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"pretraining on {world} rank(s) hung:\n{err[-3000:]}") from None
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _reads(out: Path) -> list[list]:
    """Every sequence the run read, in global order: by step, then rank."""
    lines = [json.loads(line) for f in sorted(out.glob("reads-rank*.jsonl"))
             for line in f.read_text().splitlines()]
    return [r for line in sorted(lines, key=lambda x: (x["step"], x["rank"]))
            for r in line["reads"]]


def test_training_reads_the_plan_on_one_and_two_ranks_and_resumes_from_two_to_one(
        mix_build, tmp_path):
    _, summary, _ = mix_build
    shards, mix = summary["shard"]["path"], summary["mix"]["path"]
    plan = json.loads((Path(mix) / "mixture.json").read_text())
    one = _pretrain(shards, mix, tmp_path / "one", 1, 6)
    two = _pretrain(shards, mix, tmp_path / "two", 2, 3)  # stopped at step 3 on 2 ranks ...
    assert two["world_size"] == 2 and two["grad_accum"] == 2 and one["grad_accum"] == 4
    resumed = _pretrain(shards, mix, tmp_path / "two", 1, 3)  # ... and resumed on 1 rank
    assert resumed["resumed_from_step"] == 3 and resumed["steps"] == 6
    read = _reads(tmp_path / "one")
    assert _reads(tmp_path / "two") == read and len(read) == 6 * 8
    assert resumed["final_loss"] == pytest.approx(one["final_loss"], rel=1e-4)

    # What was read, traced to its documents (lineage), matches the plan exactly.
    order = GlobalOrder(plan)
    folder = Path(shards)
    docs = pq.read_table(Path(summary["dedup"]["path"]) / "docs", columns=["id", "source"])
    source_of = dict(zip(docs.column("id").to_pylist(), docs.column("source").to_pylist(),
                         strict=True))
    seq_len = plan["seq_len"]
    index = json.loads((folder / "index.json").read_text())
    first_row: dict[str, int] = {}  # a part file's first row in its input file's stream
    rows_before: Counter = Counter()
    for shard in index["shards"]:  # sorted by path: a file's parts in order
        stem = shard["path"].rsplit("-", 1)[0]
        first_row[shard["path"]] = rows_before[stem]
        rows_before[stem] += shard["rows"]
    lineages: dict[str, dict] = {}
    by_lineage: Counter = Counter()
    for i, (source, path, row) in enumerate(read):
        assert plan["source_names"][order.source[i]] == source
        assert order.row[i] == sum(s["rows"] for s in index["shards"] if s["split"] == "train"
                                   and s["source"] == source and s["path"] < path) + row
        split, name = path.split("/")
        stem = name.removeprefix("part-").rsplit("-", 1)[0]
        if path not in lineages:
            lineages[path] = pq.read_table(folder / split / f"documents-{stem}.parquet"
                                           ).to_pydict()
        lineage = lineages[path]
        start = (first_row[path] + row) * seq_len
        end = start + seq_len
        owners = {source_of[d] for d, s, n in zip(lineage["id"], lineage["start_token"],
                                                    lineage["num_tokens"], strict=True)
                  if s < end and s + n > start}
        assert owners == {source}  # no sequence crosses sources
        by_lineage[source] += 1
    planned = {n: int(np.count_nonzero(order.source[:48] == s))
               for s, n in enumerate(plan["source_names"])}
    assert dict(by_lineage) == {n: k for n, k in planned.items() if k}
    assert resumed["mixture"]["read_sequences"] == planned == one["mixture"]["read_sequences"]
    # Per-source validation loss, and the neutral set.
    assert {"all", "neutral", "source:wikipedia", "source:imdb"} <= set(
        one["final_val_loss_by_set"])


def test_a_changed_mixture_resumes_only_where_a_new_stage_starts(mix_build, tmp_path):
    import shutil

    from training.config import PretrainConfig
    from training.pretrain import pretrain

    _, summary, _ = mix_build
    shards, mix = summary["shard"]["path"], Path(summary["mix"]["path"])
    plan = json.loads((mix / "mixture.json").read_text())
    cfg = PretrainConfig(**TINY)
    pretrain(cfg, shards, tmp_path / "run", stop_after=3, mixture_dir=mix)
    available = {n: s["available_sequences"] for n, s in plan["sources"].items()}
    recipe = load_recipe(MIX_RECIPE).mix.model_dump()

    def plan_dir(name: str, mix_cfg: dict) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        new = make_plan(available, mix_cfg, plan["seq_len"], plan["shard_index_sha256"])
        (folder / "mixture.json").write_text(json.dumps(new))
        return folder

    reweighted = {**recipe, "sources": {**recipe["sources"],
                                        "wikipedia": {"weight": 0.56, "max_repeat": 4},
                                        "imdb": {"weight": 0.1}}}
    backup = tmp_path / "backup"
    shutil.copytree(tmp_path / "run", backup)
    with pytest.raises(MixtureError, match="from_tokens = 6144"):
        pretrain(cfg, shards, tmp_path / "run", stop_after=1,
                 mixture_dir=plan_dir("reweighted", reweighted))
    staged = {**recipe, "stages": [{"from_tokens": 3 * 2048, "weights": {
        "wikipedia": 0.56, "commoncrawl": 0.04, "web_warc": 0.2, "imdb": 0.2}}]}
    metrics = pretrain(cfg, shards, backup, stop_after=1, mixture_dir=plan_dir("staged", staged))
    assert metrics["resumed_from_step"] == 3 and metrics["steps"] == 4


def test_report_shows_validation_loss_per_source_and_the_reads(mix_build, tmp_path):
    from data_cards import report
    from pipelines.manifest import RunOptions
    from training.config import PretrainConfig
    from training.pretrain import pretrain

    _, summary, _ = mix_build
    pre = tmp_path / "pretrain"
    metrics = pretrain(PretrainConfig(**TINY), summary["shard"]["path"], pre, stop_after=3,
                       mixture_dir=summary["mix"]["path"])
    (pre / "metrics.json").write_text(json.dumps(metrics))
    fine = tmp_path / "finetune"
    fine.mkdir()
    (fine / "metrics.json").write_text("{}")
    out = tmp_path / "report"
    out.mkdir()
    report.run({"recipe": "mix", "device": "cpu"}, {"pretrain": pre, "finetune": fine}, out,
               RunOptions())
    text = (out / "report.md").read_text()
    for name, loss in metrics["final_val_loss_by_set"].items():
        assert f"| {name.removeprefix('source:')} | {loss} |" in text
    for name, k in metrics["mixture"]["read_sequences"].items():
        assert f"| {name} | {k:,} | {k:,} |" in text
