"""Regenerate `language_rules.json` from a checkout of huggingface/fineweb-2 (Apache-2.0):

    python pipelines/data/make_language_rules.py FINEWEB2_CHECKOUT \
        > pipelines/data/language_rules.json

FineWeb-2 (`configs/{lang}_{script}.yml`) publishes per-language thresholds refitted from its
data; `fineweb-2-pipeline.py` applies them with a few fixed settings that hold for every
language (copied into `FIXED` below): Gopher repetition's paragraph and line-character rules
off, FineWeb's short-line rule off and its duplicate-character ratio at 0.1, Gopher quality's
min_stop_words 2, and no C4 rules. Keys are lid.176's language codes (the language ID Sieve
runs); each names the FineWeb-2 config it took.
"""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

# lid.176 code -> FineWeb-2 config (ISO 639-3 and script). zh is Mandarin (cmn), as FineWeb-2
# files Chinese; wuu and yue get their own configs where FineWeb-2 has them.
CONFIGS = {
    "zh": "cmn_Hani", "yue": "yue_Hani", "ja": "jpn_Jpan", "ko": "kor_Hang", "th": "tha_Thai",
    "ru": "rus_Cyrl", "uk": "ukr_Cyrl", "bg": "bul_Cyrl", "sr": "srp_Cyrl", "de": "deu_Latn",
    "fr": "fra_Latn", "es": "spa_Latn", "it": "ita_Latn", "pt": "por_Latn", "nl": "nld_Latn",
    "pl": "pol_Latn", "sv": "swe_Latn", "da": "dan_Latn", "no": "nob_Latn", "fi": "fin_Latn",
    "cs": "ces_Latn", "sk": "slk_Latn", "sl": "slv_Latn", "hr": "hrv_Latn", "hu": "hun_Latn",
    "ro": "ron_Latn", "et": "ekk_Latn", "lv": "lvs_Latn", "lt": "lit_Latn", "ca": "cat_Latn",
    "tr": "tur_Latn", "vi": "vie_Latn", "id": "ind_Latn", "ms": "zsm_Latn", "ar": "arb_Arab",
    "ur": "urd_Arab", "he": "heb_Hebr", "el": "ell_Grek", "hi": "hin_Deva", "bn": "ben_Beng",
    "ta": "tam_Taml", "ka": "kat_Geor", "hy": "hye_Armn",
}
FIXED = {
    "gopher_repetition": {"dup_para_frac": 0.0, "dup_para_char_frac": 0.0,
                          "dup_line_char_frac": 0.0},
    "fineweb": {"short_line_thr": 999.0, "char_duplicates_ratio": 0.1},
    "gopher_quality": {"min_stop_words": 2},
    "c4": False,
}


def rules(config: dict) -> dict:
    return {
        "language_score_glotlid": config["language_score"],
        "gopher_repetition": {**FIXED["gopher_repetition"],
                              "dup_line_frac": config["dup_line_frac"],
                              "top_n_grams": config["top_n_grams"],
                              "dup_n_grams": config["dup_n_grams"]},
        "gopher_quality": {**FIXED["gopher_quality"],
                           "min_avg_word_length": config["min_avg_word_length"],
                           "max_avg_word_length": config["max_avg_word_length"],
                           "min_alpha_words_ratio": config["max_non_alpha_words_ratio"],
                           "stop_words": config["stopwords"]},
        "fineweb": {**FIXED["fineweb"], "line_punct_thr": config["line_punct_thr"],
                    "new_line_ratio": config["new_line_ratio"]},
        "c4": FIXED["c4"],
    }


def main(repo: str) -> None:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True,
                              text=True).stdout
    commit = git("rev-parse", "HEAD").strip()
    out = {"source": "huggingface/fineweb-2 configs/*.yml and fineweb-2-pipeline.py",
           "commit": commit, "licence": "Apache-2.0",
           "note": "language_score_glotlid is on GlotLID's scale, not lid.176's: Sieve applies "
                   "a language score only where [clean.languages.<code>] sets one",
           "languages": {code: {"config": name,
                                **rules(yaml.safe_load(git("show", f"HEAD:configs/{name}.yml")))}
                         for code, name in CONFIGS.items()}}
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
