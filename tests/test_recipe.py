from pathlib import Path

import pytest

from pipelines.recipe import RecipeError, load_recipe

from .conftest import CORPORA


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(body, encoding="utf-8")
    return path


MINIMAL = f"""
name = "tiny"
[[ingest.sources]]
kind = "conll2003"
path = "{CORPORA}/conll2003/valid.txt"
"""


def test_a_recipe_needs_only_a_name_and_sources_and_gets_published_defaults(tmp_path):
    recipe = load_recipe(write(tmp_path, MINIMAL))
    assert recipe.name == "tiny"
    assert recipe.clean.min_chars == 32
    assert recipe.clean.rules_for("conll2003").min_chars == 1  # built-in labelled-set rules
    assert recipe.clean.filters == ["gopher_repetition", "gopher_quality", "c4", "fineweb",
                                    "bad_words"]
    assert recipe.clean.gopher_quality.min_doc_words == 50
    assert recipe.clean.c4.variant == "paper" and recipe.clean.fineweb.line_punct_thr == 0.12
    assert recipe.tokenizer.vocab_size == 8000
    assert recipe.shard.seq_len == 512
    assert recipe.ingest.sources[0].path == str(CORPORA / "conll2003" / "valid.txt")


def test_relative_source_paths_resolve_against_the_recipe_file(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.txt").write_text("EU NNP B-NP B-ORG\n", encoding="utf-8")
    recipe = load_recipe(write(tmp_path, 'name="x"\n[[ingest.sources]]\nkind="conll2003"\n'
                                         'path="data/*.txt"\n'))
    assert recipe.ingest.sources[0].path == str(tmp_path / "data" / "*.txt")


def test_an_unknown_key_fails_at_load_naming_the_file_and_key(tmp_path):
    path = write(tmp_path, MINIMAL + "\n[clean]\nmin_char = 10\n")
    expected = r"(?s)r\.toml.*clean\.min_char.*Extra inputs are not permitted"
    with pytest.raises(RecipeError, match=expected):
        load_recipe(path)


def test_a_value_out_of_bounds_fails_at_load(tmp_path):
    with pytest.raises(RecipeError, match="vocab_size"):
        load_recipe(write(tmp_path, MINIMAL + "\n[tokenizer]\nvocab_size = 5\n"))


def test_an_unknown_source_kind_fails_at_load(tmp_path):
    with pytest.raises(RecipeError, match="kind"):
        load_recipe(write(tmp_path, 'name="x"\n[[ingest.sources]]\nkind="rss"\npath="/"\n'))


def test_a_source_path_that_matches_nothing_fails_at_load(tmp_path):
    path = write(tmp_path, 'name="x"\n[[ingest.sources]]\nkind="imdb"\npath="nowhere/*"\n')
    with pytest.raises(RecipeError, match=r"source 'imdb': path .*nowhere/\* matches nothing"):
        load_recipe(path)


def test_a_missing_recipe_file_is_named(tmp_path):
    with pytest.raises(RecipeError, match="absent.toml: recipe file not found"):
        load_recipe(tmp_path / "absent.toml")


def test_invalid_toml_is_reported_with_the_file(tmp_path):
    with pytest.raises(RecipeError, match="r.toml: not valid TOML"):
        load_recipe(write(tmp_path, "name = \n"))


def test_quality_thresholds_are_checked_and_the_blocklist_resolved(tmp_path):
    from pipelines.recipe import RecipeError

    with pytest.raises(RecipeError, match="min_doc_word"):
        load_recipe(write(tmp_path, MINIMAL + "[clean.gopher_quality]\nmin_doc_word = 3\n"))
    with pytest.raises(RecipeError, match="fineweb_quality"):
        load_recipe(write(tmp_path, MINIMAL + '[clean]\nfilters = ["fineweb_quality"]\n'))
    with pytest.raises(RecipeError, match="blocklist"):
        load_recipe(write(tmp_path, MINIMAL + '[clean]\nblocklist = "missing.txt"\n'))
    (tmp_path / "block.txt").write_text("spam.example\n")
    recipe = load_recipe(write(tmp_path, MINIMAL + '[clean]\nblocklist = "block.txt"\n'
                                         '[clean.c4]\nvariant = "tfds"\n'))
    assert recipe.clean.blocklist == str(tmp_path / "block.txt")
    assert recipe.clean.c4.resolved()[:2] == (5, 3)


def test_a_source_name_must_be_usable_in_ids_and_counter_names(tmp_path):
    body = MINIMAL.replace('kind = "conll2003"', 'kind = "conll2003"\nname = "news:en"')
    with pytest.raises(RecipeError, match="name"):
        load_recipe(write(tmp_path, body))
