"""The `sieve` command: thin, it parses arguments and calls the flows.

    sieve build RECIPE [--root DIR] [--until STAGE] [--rebuild-from STAGE] [--runner NAME]
                       [--workers N] [--json] [--quiet] [-- BEAM OPTIONS...]
    sieve train RECIPE [--root DIR] [--device cpu|cuda] [--json] [--report-out DIR]
    sieve compare RECIPE_A RECIPE_B [--seeds N] [--device cpu|cuda] [--root DIR] [--out DIR]
    sieve inspect ROOT [RECIPE] [--out FILE] [--port N]

Runners (pipelines/runners.py): `direct` (default), Beam's in-process runner, named exactly;
`portable`, Beam's portable job API with a local job service and N worker processes that Sieve
starts, or the ones `--job_endpoint`/`--environment_config` name; `prism` with a local binary;
any other Beam runner by name (DataflowRunner, FlinkRunner, SparkRunner). Everything after `--`
goes to Beam as pipeline options (README, "Running on a cluster").

While a stage runs, its progress (documents, bytes, rate, elapsed) goes to stderr: a bar on a
terminal, a line every SIEVE_PROGRESS_SECONDS (default 10) otherwise. --quiet prints only the
summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path

from pipelines.manifest import CountersMismatch
from pipelines.recipe import RecipeError
from pipelines.runners import RunnerUnavailable


def _parser() -> argparse.ArgumentParser:
    from flows.build import STAGE_NAMES

    parser = argparse.ArgumentParser(prog="sieve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build a dataset from a recipe (cached per stage)")
    build.add_argument("recipe", help="path to a recipe TOML file")
    build.add_argument("--root", default="out", help="where stage outputs live (default: out)")
    build.add_argument("--until", choices=STAGE_NAMES, help="stop after this stage")
    build.add_argument("--rebuild-from", choices=STAGE_NAMES,
                       help="recompute this stage and everything downstream of it")
    build.add_argument("--runner", default="direct",
                       help="direct (default), portable, prism, or a Beam runner's name")
    build.add_argument("--workers", type=int, default=1,
                       help="worker processes: the in-process runner's multi-processing mode, "
                            "or the portable runner's external workers")
    build.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    build.add_argument("--quiet", action="store_true",
                       help="no progress and no stage lines: only the summary")
    build.add_argument("--card-out", metavar="DIR",
                       help="also copy the data card (README.md and its plots) to this folder")
    train = sub.add_parser("train", help="build what is missing, then pretrain, fine-tune and "
                                         "write the evaluation report")
    train.add_argument("recipe", help="path to a recipe TOML file")
    train.add_argument("--root", default="out", help="where stage outputs live (default: out)")
    train.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    train.add_argument("--runner", default="direct", help="Beam runner for the build")
    train.add_argument("--workers", type=int, default=1)
    train.add_argument("--json", action="store_true",
                       help="print one JSON object: metrics and output paths")
    train.add_argument("--quiet", action="store_true",
                       help="no progress and no stage lines: only the summary")
    train.add_argument("--report-out", help="also copy report.md and its plots to this folder")
    compare = sub.add_parser(
        "compare", help="build two recipes (arms), train the same model on each with N seeds, "
                        "and report the paired difference in held-out bits per byte and tasks")
    compare.add_argument("recipe_a", help="arm A, e.g. recipes/ablation_raw.toml")
    compare.add_argument("recipe_b", help="arm B, e.g. recipes/ablation_curated.toml")
    compare.add_argument("--root", default="out")
    compare.add_argument("--seeds", type=int, default=3)
    compare.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    compare.add_argument("--out", help="where comparison.md/json go (default: ROOT/compare/A-vs-B)")
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON")
    inspect = sub.add_parser(
        "inspect", help="a page of what a build kept, dropped and merged, from its outputs")
    inspect.add_argument("root", help="the build's root (as given to sieve build --root)")
    inspect.add_argument("recipe", nargs="?",
                         help="the recipe built there (default: the root's newest data card)")
    inspect.add_argument("--out", help="write one self-contained HTML file here")
    inspect.add_argument("--port", type=int, help="serve the page on localhost:PORT")
    serve = sub.add_parser("serve", help="register and serve deployments: a (scheduled) build per "
                                         "recipe and a training run triggered by each build")
    serve.add_argument("recipes", nargs="+", help="recipe TOML files")
    serve.add_argument("--root", default="out")
    serve.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    runs = sub.add_parser("runs", help="recent flow runs with their state and stages")
    runs.add_argument("--limit", type=int, default=10)
    runs.add_argument("--json", action="store_true")
    return parser


def _print_clean_table(counters: dict[str, int]) -> None:
    """Documents in, kept and dropped per reason, one column per source."""
    from pipelines.clean import reason_table

    sources, rows = reason_table(counters)
    width = max([len(r) for r, _ in rows] + [12])
    cols = [max(len(s), 9) for s in sources]
    print("clean, per source:")
    print(f"  {'':<{width}} " + " ".join(f"{s:>{w}}" for s, w in zip(sources, cols, strict=True))
          + f" {'total':>9}")
    for reason, values in rows:
        print(f"  {reason:<{width}} " + " ".join(f"{v:>{w},}" for v, w in
                                                 zip(values, cols, strict=True))
              + f" {sum(values):>9,}")
    pii = {k.removeprefix("pii:"): v for k, v in counters.items() if k.startswith("pii:")}
    if pii:
        print("  PII redacted in kept documents: "
              + ", ".join(f"{k} {v:,}" for k, v in sorted(pii.items())))
    print()


def _print_table(summary: dict) -> None:
    header = f"{'stage':<10} {'state':<8} {'in':>10} {'out':>10} {'dropped':>9}  key"
    print(header)
    print("-" * len(header))
    for stage, info in summary.items():
        c = info["counters"]
        lost = sum(v for k, v in c.items() if k.startswith(("dropped:", "error:")))
        state = "cached" if info["cached"] else "built"
        print(f"{stage:<10} {state:<8} {c['in']:>10,} {c['out']:>10,} {lost:>9,}  {info['key']}")
    print()
    for stage, info in summary.items():
        reasons = {k: v for k, v in info["counters"].items()
                   if k.startswith(("dropped:", "error:")) and v}
        if stage == "clean":
            _print_clean_table(info["counters"])
        elif reasons:
            print(f"{stage} drop reasons:")
            for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
                print(f"  {reason:<40} {n:>10,}")
    if "card" in summary:
        print(f"\ndata card: {summary['card']['path']}/README.md")


def quiet_environment() -> None:
    """No ERROR or WARNING line on a healthy build: Prefect's telemetry (it has no network to
    reach) off, Prefect's own INFO lines off, and Beam's notice that the optional BigQuery
    client is missing dropped. Before Prefect and Beam are imported: they read these then."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_drop_apitools_notice)
    logging.getLogger("apache_beam").setLevel(logging.WARNING)


def _drop_apitools_notice(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("apitools not found")


def main(argv: list[str] | None = None) -> int:
    quiet_environment()
    argv = list(sys.argv[1:] if argv is None else argv)
    beam_args = argv[argv.index("--") + 1:] if "--" in argv else []
    args = _parser().parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.beam_args = beam_args
    if args.command == "train":
        return _train(args)
    if args.command == "compare":
        return _compare(args)
    if args.command == "inspect":
        return _inspect(args)
    if args.command == "serve":
        from flows.serve import serve_recipes

        serve_recipes(args.recipes, args.root, args.device)
        return 0
    if args.command == "runs":
        from flows.serve import recent_runs

        rows = recent_runs(args.limit)
        if args.json:
            print(json.dumps(rows))
        else:
            for r in rows:
                print(f"{(r['start'] or '-')[:19]:<20} {r['flow']:<14} {r['state'] or '-':<10} "
                      f"{r['name']:<24} {' '.join(r['stages'])}")
        return 0
    from flows.build import build_dataset

    try:
        summary = build_dataset(args.recipe, root=args.root, until=args.until,
                                runner=args.runner, workers=args.workers,
                                rebuild_from=args.rebuild_from, quiet=args.quiet,
                                beam_args=args.beam_args)
    except (RecipeError, CountersMismatch, RunnerUnavailable) as exc:
        print(f"sieve: {exc}", file=sys.stderr)
        return 2
    if args.card_out and "card" in summary:
        _copy_outputs(summary["card"]["path"], args.card_out)
    if args.json:
        print(json.dumps(summary))
    else:
        _print_table(summary)
    return 0


def _copy_outputs(folder: str, destination: str) -> None:
    """A card's or report's markdown, JSON and plots (not its manifest) to a folder."""
    os.makedirs(destination, exist_ok=True)
    for name in sorted(os.listdir(folder)):
        if name.endswith((".md", ".png", ".json")) and name != "manifest.json":
            shutil.copyfile(os.path.join(folder, name), os.path.join(destination, name))


def _inspect(args: argparse.Namespace) -> int:
    from data_cards.inspect import NotBuilt, page, serve
    from pipelines.recipe import load_recipe

    try:
        recipe = load_recipe(args.recipe) if args.recipe else None
        if args.out or args.port is None:
            out = Path(args.out or Path(args.root) / "inspect.html")
            out.write_text(page(recipe, args.root), encoding="utf-8")
            print(f"inspect page: {out}")
        if args.port is not None:
            serve(recipe, args.root, args.port)
    except (RecipeError, NotBuilt) as exc:
        print(f"sieve: {exc}", file=sys.stderr)
        return 2
    return 0


def _run_training(args: argparse.Namespace, call) -> dict | None:
    """`sieve train` and `sieve compare`: a missing CUDA device or a recipe, data or budget
    error is one line on stderr (and exit status 2), not a traceback."""
    from flows.train import TrainingStopped

    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("sieve: --device cuda but no CUDA device is visible", file=sys.stderr)
            return None
    try:
        return call()
    except (RecipeError, CountersMismatch, RunnerUnavailable, ValueError,
            TrainingStopped) as exc:
        print(f"sieve: {exc}", file=sys.stderr)
        return None


def _compare(args: argparse.Namespace) -> int:
    from flows.compare import compare

    result = _run_training(args, lambda: compare(
        args.recipe_a, args.recipe_b, root=args.root, seeds=args.seeds, device=args.device,
        out=args.out))
    if result is None:
        return 2
    if args.json:
        print(json.dumps(result))
        return 0
    print((Path(result["path"]) / "comparison.md").read_text(encoding="utf-8"))
    print(f"comparison: {result['path']}/comparison.md")
    return 0


def _train(args: argparse.Namespace) -> int:
    from flows.train import train_model

    summary = _run_training(args, lambda: train_model(
        args.recipe, root=args.root, device=args.device, runner=args.runner,
        workers=args.workers, quiet=args.quiet, beam_args=args.beam_args))
    if summary is None:
        return 2
    report_dir = summary["report"]["path"]
    if args.report_out:
        _copy_outputs(report_dir, args.report_out)
    if args.json:
        print(json.dumps(summary))
        return 0
    metrics = summary["report"]["metrics"]
    print(json.dumps(metrics, indent=2))
    print(f"\nreport: {report_dir}/report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
