"""The streaming write path: output files per input split, the tokenizer's bounded sample, and
the progress a build shows while a stage runs."""

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import ingest, workers
from pipelines.io import BATCH_ROWS
from pipelines.manifest import RunOptions, materialize
from pipelines.recipe import load_recipe
from tokenizer.train import MAX_SENTENCE_BYTES, POSITION_BITS, SentenceSample, line_pieces

from .conftest import run_sieve


@pytest.fixture(scope="module")
def reviews(corpora) -> list[str]:
    folder = corpora / "imdb_aclImdb" / "aclImdb" / "train" / "pos"
    return [p.read_text(encoding="utf-8").replace("<br /><br />", "\n")
            for p in sorted(folder.glob("*.txt"))]


def sample_lines(texts: list[str], size: int, seed: int, batches: list[slice]) -> list[str]:
    sample = SentenceSample(size, seed)
    most = 0
    for part in batches:
        ids = [f"imdb/{i}" for i in range(len(texts))][part]
        sample.add(pa.array(ids), pa.array(texts[part]))
        batch_lines = sum(1 for t in texts[part] for line in t.split("\n") if line.strip())
        # Bounded while streaming: at most twice the size, plus the batch that crossed it.
        assert not size or sample.held <= 2 * size + batch_lines
        most = max(most, sample.held)
    path = Path(f"/tmp/sieve-sample-{size}-{seed}-{id(batches)}.txt")
    n = sample.write(path)
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]
    path.unlink()
    assert n == len(lines) == (min(size, sample.seen) if size else sample.seen)
    return lines


def test_tokenizer_sample_is_seeded_bounded_and_independent_of_batching(reviews):
    every = [piece for t in reviews for line in t.split("\n") for piece in line_pieces(line)
             if piece.strip()]
    assert len(every) > 2000
    one = sample_lines(reviews, 500, 17, [slice(0, None)])
    many = sample_lines(reviews, 500, 17, [slice(i, i + 37) for i in range(0, len(reviews), 37)])
    backwards = sample_lines(reviews, 500, 17,
                             [slice(i, i + 100) for i in range(0, len(reviews), 100)][::-1])
    other_seed = sample_lines(reviews, 500, 18, [slice(0, None)])
    assert len(one) == 500 and one == many  # the same lines, written in read order
    assert sorted(backwards) == sorted(one)  # the same set whatever order the documents came in
    assert set(one) <= set(every) and other_seed != one
    # size 0: every line, in read order
    assert sample_lines(reviews, 0, 17, [slice(0, None)]) == every


def every_piece(ids: list[str], texts: list[str], max_bytes: int) -> list[str]:
    sample = SentenceSample(0, 17, max_bytes=max_bytes)
    sample.add(pa.array(ids), pa.array(texts))
    path = Path(f"/tmp/sieve-pieces-{max_bytes}-{id(texts)}.txt")
    sample.write(path)
    lines = path.read_bytes().decode("utf-8").split("\n")[:-1]
    path.unlink()
    return lines


def test_long_lines_are_sampled_as_pieces_sentencepiece_keeps(reviews, corpora):
    # SentencePiece skips a training line over MAX_SENTENCE_BYTES: real reviews hold such
    # lines, and a Chinese page's lines joined make one (cut after "。", "！" or "？").
    pages = [json.loads(line)["raw_content"] for line in (
        corpora / "chinese_web_ccnet" / "cleared1.jsonl").read_text(encoding="utf-8").split("\n")
        if line]
    zh_line = "".join("".join(page.split("\n")) for page in pages[:8])
    assert len(zh_line.encode("utf-8")) > 3 * MAX_SENTENCE_BYTES
    runs = "雨" * 3000 + " " * 9000 + "x"  # no sentence end: cut between characters; blank
    texts = reviews + [zh_line, runs]        # pieces are not sampled
    ids = [f"doc/{i}" for i in range(len(texts))]
    assert max(len(line.encode("utf-8")) for t in reviews for line in t.split("\n")) \
        > MAX_SENTENCE_BYTES
    for max_bytes in (MAX_SENTENCE_BYTES, 200, 64):
        want = [piece for t in texts for line in t.split("\n")
                for piece in line_pieces(line, max_bytes) if piece.strip()]
        assert every_piece(ids, texts, max_bytes) == want  # the kernel cuts as the reference
        assert max(len(piece.encode("utf-8")) for piece in want) <= max_bytes
    for line in (zh_line, runs):
        pieces = line_pieces(line)
        assert "".join(pieces) == line and len(pieces) > 1
    assert all(piece.endswith(("。", "！", "？", " ", ".", "!", "?"))
               for piece in line_pieces(zh_line)[:-1])
    # 1,397 characters of 3 bytes, twice; the last 206 and spaces to the byte limit (it ends
    # after a space); spaces only (not sampled); the last spaces and "x"
    assert [len(p.encode("utf-8")) for p in line_pieces(runs)] == [4191, 4191, 4192, 4192, 1235]
    assert not line_pieces(runs)[3].strip()


def test_tokenizer_sample_merged_from_files_is_the_one_a_single_reader_takes(reviews, tmp_path):
    # The stage reads its files in parallel: a sample per file (positions from the file's index,
    # the merged sample's threshold when the file started), merged in file order.
    ids = pa.array([f"imdb/{i}" for i in range(len(reviews))])
    texts = pa.array(reviews)
    for size in (500, 0):
        single = SentenceSample(size, 17)
        for start in range(0, len(reviews), 37):
            single.add(ids[start:start + 37], texts[start:start + 37])
        merged = SentenceSample(size, 17)
        files = list(range(0, len(reviews), 150))
        for index, start in enumerate(files):
            part = SentenceSample(size, 17, index << POSITION_BITS, merged.threshold)
            for batch in range(start, min(start + 150, len(reviews)), 37):
                end = min(batch + 37, start + 150)
                part.add(ids[batch:end], texts[batch:end])
            merged.merge(part)
            assert not size or merged.held < 2 * size  # pruned as it grows
        assert merged.seen == single.seen and len(files) > 5
        assert merged.threshold < 2**64 - 1 if size else True
        paths = [tmp_path / f"{name}-{size}.txt" for name in ("single", "merged")]
        assert single.write(paths[0]) == merged.write(paths[1])
        assert paths[0].read_bytes() == paths[1].read_bytes()


def test_ingest_writes_files_per_input_split_with_size_rollover(corpora, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'name = "r"\n[[ingest.sources]]\nkind = "imdb"\n'
                      f'path = "{corpora}/imdb_aclImdb/aclImdb"\n'
                      f'[[ingest.sources]]\nkind = "conll2003"\n'
                      f'path = "{corpora}/conll2003/*.txt"\n'
                      f'[ingest]\nfile_bytes = 1048576\n', encoding="utf-8")
    cfg = load_recipe(recipe).ingest
    out = materialize(ingest, cfg, {}, tmp_path / "root")
    names = sorted(p.name for p in (out.path / "docs").glob("*.parquet"))
    # imdb: 5,000 small files, one task, parts of at most 1 MiB of Arrow data (a part can
    # overshoot by one record batch); conll2003: its three files together, one task.
    assert names[0] == "conll2003-00000-000.parquet" and "imdb-00000-000.parquet" in names
    assert all(re.fullmatch(r"(imdb|conll2003)-00000-\d{3}\.parquet", n) for n in names)
    imdb = [n for n in names if n.startswith("imdb")]
    assert len(imdb) > 3
    for name in names:
        meta = pq.read_metadata(out.path / "docs" / name)
        assert meta.num_row_groups >= 1 and all(
            meta.row_group(g).num_rows <= BATCH_ROWS for g in range(meta.num_row_groups))
    # Rows keep the input order: the reviews in the order the files were listed.
    ids = [i for n in imdb for i in pq.read_table(out.path / "docs" / n, columns=["id"])
           .column("id").to_pylist()]
    listed = [re.search(r"(train|test)/(pos|neg)/(\d+)_\d+\.txt$", p).groups()
              for p in ingest.list_files(cfg.sources[0])]
    assert ids == ["imdb/" + "/".join(parts) for parts in listed] and len(ids) == 5000
    two = materialize(ingest, cfg, {}, tmp_path / "root2", RunOptions(workers=2))
    assert workers.ensure_server().forked >= 2  # the two workers forked from the warm server
    for name in names:
        assert (out.path / "docs" / name).read_bytes() == (two.path / "docs" / name).read_bytes()


def test_progress_is_a_line_every_few_seconds_on_a_non_terminal(corpora, tmp_path):
    recipe = tmp_path / "imdb.toml"
    recipe.write_text(f'name = "imdb"\n[[ingest.sources]]\nkind = "imdb"\n'
                      f'path = "{corpora}/imdb_aclImdb/aclImdb"\n', encoding="utf-8")
    proc = run_sieve("build", str(recipe), "--root", str(tmp_path / "out"), "--until", "clean",
                     env={"SIEVE_PROGRESS_SECONDS": "0.2"})
    lines = proc.stderr.splitlines()
    assert not [line for line in lines if "ERROR" in line or "WARNING" in line], lines
    assert "[sieve] clean: running" in lines and any(
        line.startswith("[sieve] clean: done") for line in lines)
    shown = [re.match(r"\[sieve\] clean: +([\d,]+)/([\d,]+) docs \((\d+)%\)  ([\d.,]+) MB  "
                      r"[\d,]+ docs/s  [\d.]+ MB/s  \d+ s$", line)
             for line in lines if line.startswith("[sieve] clean: ") and "docs (" in line]
    assert shown and all(shown), lines
    done = [int(m.group(1).replace(",", "")) for m in shown]
    assert done == sorted(done) and {m.group(2) for m in shown} == {"5,000"}
    assert all(n <= 5000 for n in done)
    summary = proc.stdout
    assert "clean      built" in summary

    quiet = run_sieve("build", str(recipe), "--root", str(tmp_path / "out2"), "--until", "clean",
                      "--quiet", env={"SIEVE_PROGRESS_SECONDS": "0.2"})
    assert quiet.stderr.strip() == "" and "clean      built" in quiet.stdout
    assert json.loads(run_sieve("build", str(recipe), "--root", str(tmp_path / "out2"),
                                "--until", "clean", "--quiet", "--json").stdout)["clean"]["cached"]


def test_progress_of_a_stage_no_worker_reported_shows_only_elapsed_time(tmp_path):
    from pipelines import progress

    folder = tmp_path / "progress"
    folder.mkdir()
    assert progress.format_line("tasks", progress.read_totals(str(folder)), 12.0, 100, None) \
        == "[sieve] tasks:  12 s"  # not "0 docs": the stage counts nothing as it goes
    reporter = progress.Reporter(str(folder))
    reporter.advance(docs=40, nbytes=2_000_000)
    reporter.flush()
    assert progress.format_line("clean", progress.read_totals(str(folder)), 10.0, 100, None) \
        == "[sieve] clean:  40/100 docs (40%)  2.0 MB  4 docs/s  0.2 MB/s  10 s"


def test_tokenizer_trains_from_a_path_with_a_comma(reviews, tmp_path):
    # SentencePiece splits its `input` at commas; a --root such as "run,2" must still train,
    # and give the same model as any other path.
    from pipelines.recipe import TokenizerConfig
    from tokenizer import spm

    cfg = TokenizerConfig(vocab_size=500)
    plain, comma = tmp_path / "plain" / "s.txt", tmp_path / "run,2" / "s.txt"
    for path in (plain, comma):
        path.parent.mkdir()
        path.write_text("\n".join(reviews[:300]) + "\n", encoding="utf-8")
    assert spm.train_model_from_file(str(comma), cfg) == spm.train_model_from_file(str(plain),
                                                                                    cfg)
