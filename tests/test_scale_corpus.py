"""bench/scale_corpus.py: the same N, seed and paragraph pool give the same bytes, and a corpus
on disk is reused only when it was drawn from the pool the code reads today."""

import hashlib
import json

from bench import scale_corpus


def _pool(corpora) -> dict[str, list[str]]:
    reviews = sorted((corpora / "imdb_aclImdb" / "aclImdb").glob("*/*/*.txt"))[:120]
    texts = [p.read_text(encoding="utf-8").replace("<br />", "\n") for p in reviews]
    genres = list(scale_corpus.GENRE_WEIGHTS)
    return {g: texts[k::len(genres)] for k, g in enumerate(genres)}


def _digests(files) -> list[str]:
    return [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]


def test_a_corpus_is_reused_only_for_the_pool_it_was_drawn_from(corpora, tmp_path, monkeypatch):
    pool = _pool(corpora)
    monkeypatch.setattr(scale_corpus, "paragraphs", lambda: pool)
    out = tmp_path / "corpus"
    files = scale_corpus.write_corpus(300, 0, out, docs_per_shard=100)
    assert len(files) == 3
    first, stamps = _digests(files), [f.stat().st_mtime_ns for f in files]
    marker = json.loads((out / "COMPLETE").read_text())
    assert marker == {"docs": 300, "seed": 0, "pool_sha256": scale_corpus.pool_fingerprint(pool)}

    # The same pool: the files on disk are taken as they are.
    assert scale_corpus.write_corpus(300, 0, out, docs_per_shard=100) == files
    assert [f.stat().st_mtime_ns for f in files] == stamps

    # A changed pool (a reader of the samples changed): drawn again, and not the same bytes.
    changed = dict(pool, review=pool["review"][1:])
    monkeypatch.setattr(scale_corpus, "paragraphs", lambda: changed)
    redrawn = scale_corpus.write_corpus(300, 0, out, docs_per_shard=100)
    assert _digests(redrawn) != first
    assert json.loads((out / "COMPLETE").read_text())["pool_sha256"] == \
        scale_corpus.pool_fingerprint(changed)

    # The first pool again, in a fresh folder: the first bytes (deterministic).
    monkeypatch.setattr(scale_corpus, "paragraphs", lambda: pool)
    assert _digests(scale_corpus.write_corpus(300, 0, tmp_path / "again", 100)) == first
