"""The ``singerbench`` command: parses options and calls the stations, nothing more.

A :class:`~singerbench.errors.UserError` anywhere below ends in one line on stderr and exit status 1; an
interruption keeps what was computed (the stations write atomically) and says how to resume.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from singerbench.errors import UserError


def _progress_default() -> bool:
    return sys.stderr.isatty()


def _parse_dataset_options(pairs: tuple[str, ...]) -> dict:
    """``-D key=value`` pairs for adapter options that have no flag of their own."""
    options = {}
    for pair in pairs:
        if "=" not in pair:
            raise UserError(f"-D expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        options[key.strip().replace("-", "_")] = value
    return options


def _class_counts(value: str | None) -> list[int] | None:
    if not value:
        return None
    try:
        counts = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--class-counts expects integers separated by commas, got {value!r}") from None
    if any(c < 2 for c in counts):
        raise UserError("--class-counts: every class count must be at least 2")
    return counts


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="singerbench")
def cli() -> None:
    """Benchmark singer-identification embeddings on real and cloned voices."""
    # The stations say what long one-off work they start (rendering, separation) through this logger.
    logger = logging.getLogger("singerbench")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def dataset_options(f):
    """The options naming a dataset and its source files, shared by `run`, `train` and `probe`."""
    options = [
        click.option("--dataset", "-d", default="synth", show_default=True, help="synth, fma, mtg, closed, cloned or hf://owner/name[@rev]."),
        click.option("--data-root", type=click.Path(path_type=Path), help="Folder holding the dataset's audio."),
        click.option("--splits", type=click.Path(path_type=Path), help="Split files: a folder or splits.zip (fma, mtg)."),
        click.option("--manifest", type=click.Path(path_type=Path), help="Bring-your-own manifest (closed, cloned)."),
        click.option("--reference", type=click.Path(path_type=Path), help="Closed-set manifest the cloned set is tested against."),
        click.option("--drop-small", is_flag=True, default=None, help="Drop singers below the protocol's minimum instead of stopping (fma, mtg)."),
        click.option("--synth-preset", type=click.Choice(["tiny", "small", "full", "large"]), help="Size of the generated corpus (synth; default small; large: every installed voice)."),
        click.option("-D", "dataset_option", multiple=True, metavar="KEY=VALUE", help="Any other dataset option, e.g. -D singer_column=artist."),
        click.option("--cache-dir", type=click.Path(path_type=Path), help="Cache root (default: $SINGERBENCH_CACHE_DIR or ~/.cache/singerbench)."),
        click.option("--progress/--no-progress", default=None, help="Progress bars (default: when stderr is a terminal)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


device_option = click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ...")


def _collect_dataset_options(kw: dict) -> dict:
    options = _parse_dataset_options(kw.pop("dataset_option"))
    for key in ("data_root", "splits", "manifest", "reference", "drop_small"):
        value = kw.pop(key)
        if value is not None:
            options[key] = value
    synth_preset = kw.pop("synth_preset")
    if synth_preset:
        options["preset"] = synth_preset
    return options


def _progress(kw: dict) -> bool:
    value = kw.pop("progress")
    return _progress_default() if value is None else value


@cli.command()
@click.option("--model", "-m", required=True, help="Registered name, file.py:Class, module:Class, DIR or hf://owner/repo[@rev].")
@dataset_options
@device_option
@click.option("--preset", default="paper", show_default=True, help="Protocol preset: paper, paper-nologitnorm, quick (docs/protocol.md).")
@click.option("--runs", default=10, show_default=True, type=click.IntRange(1), help="Head trainings (seeds).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--class-counts", help="Comma-separated class counts to sweep, e.g. 100,200,300.")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(1), help="Segments per embedding batch.")
@click.option("--separator", help="Demucs model making vocal stems when the dataset has none (default htdemucs).")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Result JSON (default: leaderboard/results/DATASET/MODEL--PRESET.json).")
def run(**kw) -> None:
    """Evaluate a model on a dataset through the protocol and write its result."""
    from singerbench.leaderboard import render
    from singerbench.run import RunRequest, run_benchmark

    options = _collect_dataset_options(kw)
    progress = _progress(kw)
    req = RunRequest(
        dataset_options=options,
        class_counts=_class_counts(kw.pop("class_counts")),
        progress=progress,
        **kw,
    )
    result, path = run_benchmark(req)
    click.echo(render([result]).to_markdown())
    click.echo(f"result written to {path}")


@cli.command()
@click.option("--input", "input_kind", type=click.Choice(["mixture", "vocals", "hybrid"]), required=True,
              help="What the encoder hears: mixtures, vocal stems, or either (hybrid).")
@dataset_options
@device_option
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Weights folder to write (resumes if it holds a checkpoint).")
@click.option("--tiny", is_flag=True, help="The CPU-sized configuration (small AST, short epochs): minutes, not days.")
@click.option("--max-epochs", type=click.IntRange(1), help="Cap on epochs (default: the recipe's).")
@click.option("--train-batch-size", type=click.IntRange(2), help="Positive pairs per batch (default: the recipe's).")
@click.option("--set", "settings", multiple=True, metavar="FIELD=VALUE",
              help="Override any field of the recipe, e.g. --set stop_patience=20 (docs/training.md lists them).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--separator", help="Demucs model for vocal stems when the dataset has none.")
def train(**kw) -> None:
    """Train an AST encoder with the paper's singer-level contrastive recipe."""
    from singerbench.datasets import load_dataset
    from singerbench.run import make_separator, pick_device
    from singerbench.train import TrainConfig
    from singerbench.train import train as train_model

    options = _collect_dataset_options(kw)
    progress = _progress(kw)
    settings = TrainConfig.parse_overrides(kw["settings"])  # a typo fails before any dataset work
    device = pick_device(kw["device"])
    manifest = load_dataset(kw["dataset"], {"cache_dir": kw["cache_dir"], "progress": progress}, **options)
    overrides = {"seed": kw["seed"]}
    if kw["max_epochs"]:
        overrides["max_epochs"] = kw["max_epochs"]
    if kw["train_batch_size"]:
        overrides["batch_size"] = kw["train_batch_size"]
    overrides.update(settings)
    config = TrainConfig.tiny(**overrides) if kw["tiny"] else TrainConfig(**overrides)
    separator = make_separator(kw["separator"], kw["cache_dir"], device)
    folder = train_model(kw["input_kind"], manifest, kw["out"], config, device=device, progress=progress,
                         separator=separator)
    click.echo(f"weights written to {folder}; evaluate with: singerbench run --model {folder}")


@cli.command()
@click.argument("folder", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.argument("repo_id")
@click.option("--private", is_flag=True)
@click.option("--token", envvar="HF_TOKEN", help="Hub token (default: $HF_TOKEN or the saved login).")
def push(folder: Path, repo_id: str, private: bool, token: str | None) -> None:
    """Publish a weights folder to the Hugging Face Hub."""
    from singerbench.hub import push as push_folder

    commit = push_folder(folder, repo_id, private=private, token=token)
    click.echo(f"pushed: hf://{repo_id}@{commit}")


@cli.command("convert-clmr")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--trusted", is_flag=True, help="Allow a checkpoint holding pickled Python objects (only from a source you trust).")
def convert_clmr(checkpoint: Path, out: Path, trusted: bool) -> None:
    """Turn a public CLMR checkpoint (.pt or Lightning .ckpt) into a weights folder for --model DIR."""
    from singerbench.pretrained import convert_clmr as convert

    click.echo(f"weights written to {convert(checkpoint, out, trusted=trusted)}")


@cli.group()
def splits() -> None:
    """Build singer split files in the published layout."""


@splits.command("build")
@click.option("--dataset", type=click.Choice(["fma", "mtg"]), required=True)
@click.option("--metadata", type=click.Path(path_type=Path, exists=True), required=True,
              help="MTG-Jamendo's TSV (.tsv or .tsv.gz), or FMA's tracks.csv / raw_tracks.csv.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="A folder, or a .zip like the published splits.zip.")
@click.option("--data-root", type=click.Path(path_type=Path), help="Audio root: vocal activity is computed on the audio.")
@click.option("--vocal-table", type=click.Path(path_type=Path), help="Precomputed vocal activity per track (see docs/datasets.md).")
@click.option("--min-vocal-ratio", default=0.5, show_default=True, type=float)
@click.option("--min-tracks", default=5, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
def splits_build(dataset: str, metadata: Path, out: Path, data_root: Path | None, vocal_table: Path | None,
                 min_vocal_ratio: float, min_tracks: int, seed: int) -> None:
    """Filter tracks and singers as the paper did, draw val/test tracks with a seed, write the split files."""
    from singerbench.splitbuilder import build_splits

    _, report = build_splits(dataset, metadata, out, data_root=data_root, vocal_table=vocal_table,
                             min_vocal_ratio=min_vocal_ratio, min_tracks=min_tracks, seed=seed)
    click.echo(report.format())
    click.echo(f"split files written to {out}")


@cli.command()
def models() -> None:
    """List registered models: name, input kind, sample rate, embedding size and where each came from."""
    from singerbench.registry import registered_models

    rows = [("name", "input", "sample rate", "dim", "source")]
    for name, entry in sorted(registered_models().items()):
        try:
            cls = entry.plugin_class()
            rows.append((name, cls.input_kind, str(cls.sample_rate), str(cls.embedding_dim), entry.source))
        except UserError as e:
            rows.append((name, "?", "?", "?", f"{entry.source} (broken: {e})"))
    _echo_table(rows)


@cli.command()
@click.argument("model")
def validate(model: str) -> None:
    """Check a plugin on a tiny generated batch; names each contract violation."""
    from singerbench.registry import resolve_model
    from singerbench.validate import validate_embedder

    report = validate_embedder(resolve_model(model).embedder)
    for check in report.checks:
        click.echo(f"  checked: {check}")
    if not report.ok:
        for problem in report.problems:
            click.echo(f"  problem: {problem}", err=True)
        raise UserError(f"model {report.model!r} violates the plugin contract ({len(report.problems)} problem(s))")
    click.echo(f"model {report.model!r} passes the plugin contract")


@cli.command()
def datasets() -> None:
    """List datasets, what each needs and whether it is ready on this machine."""
    from singerbench.datasets import all_datasets

    rows = [("name", "ready", "needs", "status")]
    for name, adapter in sorted(all_datasets().items()):
        try:
            ready, message = adapter.status()
        except UserError as e:
            ready, message = False, str(e)
        rows.append((name, "yes" if ready else "no", adapter.needs, message))
    _echo_table(rows)


@cli.command()
@click.argument("results", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=Path("leaderboard"), show_default=True,
              help="Where leaderboard.md, leaderboard.csv and index.html are written.")
def leaderboard(results: tuple[Path, ...], out: Path) -> None:
    """Render results (files or folders; default leaderboard/results) as Markdown, CSV and HTML."""
    from singerbench.leaderboard import load_results, render, write

    loaded = load_results(list(results) or [Path("leaderboard") / "results"])
    if not loaded:
        raise UserError("no results found; run `singerbench run --model mfcc --dataset synth` first")
    board = render(loaded)
    write(board, out)
    click.echo(board.to_markdown())


@cli.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@dataset_options
def probe(results: tuple[Path, ...], **kw) -> None:
    """What models listen to on cloned tracks: the voice, or the singer whose backing they hear."""
    from singerbench.datasets import load_dataset
    from singerbench.leaderboard import load_results
    from singerbench.probe import probe_results, to_markdown

    options = _collect_dataset_options(kw)
    manifest = load_dataset(kw["dataset"], {"cache_dir": kw["cache_dir"], "progress": _progress(kw)}, **options)
    click.echo(to_markdown(probe_results(load_results(list(results)), manifest)))


@cli.command()
@click.option("--preset", type=click.Choice(["tiny", "small", "full", "large"]), default="small", show_default=True)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder to render into.")
@click.option("--workers", type=click.IntRange(1), help="Render processes (default: all cores).")
@click.option("--confound", type=click.FloatRange(0.0, 1.0), help="Probability that a real song's backing is in its singer's home style (default: the preset's; 0 removes the confound).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
def synth(preset: str, seed: int, out: Path, workers: int | None, confound: float | None, progress: bool | None) -> None:
    """Render the generated-singers corpus (a cache hit when OUT already holds it)."""
    from singerbench.synthgen import check_system, render_corpus, resolve_preset

    check_system(resolve_preset(preset).voices)
    progress = _progress_default() if progress is None else progress
    manifest_path = render_corpus(preset, seed, out, progress=progress, workers=workers, confound=confound)
    click.echo(f"generated corpus ({preset}, seed {seed}): {manifest_path}")


def _echo_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the group, turning user errors into one line and a non-zero exit."""
    try:
        cli.main(args=argv, prog_name="singerbench", standalone_mode=False)
    except UserError as e:
        click.echo(f"error: {e}", err=True)
        return 1
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except (KeyboardInterrupt, click.Abort):
        click.echo("interrupted: work done so far is kept; run the same command again to resume", err=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
