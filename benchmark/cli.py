"""The ``singerbench`` command: parses options and calls the stations, nothing more.

A :class:`~singerbench.errors.UserError` anywhere below ends in one line on stderr and exit status 1; an
interruption keeps what was computed (the stations write atomically) and says how to resume.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
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


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record (it may be replaced after start-up)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


DEBUG_ENV = "SINGERBENCH_DEBUG"
_debug = False


def _debugging() -> bool:
    return _debug or os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    global _debug
    _debug = bool(value)
    return value


def _grant(kind: str):
    def callback(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
        if value:
            from singerbench.trust import grant

            grant(kind)
        return value

    return callback


def trust_options(*kinds: str):
    """The opt-in flags that let code run from weights (singerbench.trust): only the user sets them."""
    help_ = {
        "separator": "Allow a Demucs separator outside the known list, or weights that name other classes "
                     "(they can run code). Same as SINGERBENCH_TRUST=separator.",
        "plugin": "Allow a weights folder whose config.json names an unregistered plugin class (importing it "
                  "runs its module). Same as SINGERBENCH_TRUST=plugin.",
        "pickle": "Allow checkpoints holding pickled Python objects (they can run code). "
                  "Same as SINGERBENCH_TRUST=pickle.",
    }

    def deco(f):
        from singerbench.trust import OPTIONS

        for kind in reversed(kinds):
            f = click.option(OPTIONS[kind], f"trust_{kind}", is_flag=True, expose_value=False, is_eager=True,
                             callback=_grant(kind), help=help_[kind])(f)
        return f

    return deco


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="singerbench")
@click.option("--debug", is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
              help=f"Show the traceback of an error (also {DEBUG_ENV}=1).")
def cli() -> None:
    """Benchmark singer-identification embeddings on real and cloned voices."""
    from singerbench.trust import revoke_all

    revoke_all()  # trust is granted per command, by that command's own options (or SINGERBENCH_TRUST)
    # The stations say what long one-off work they start (rendering, separation) through this logger.
    logger = logging.getLogger("singerbench")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


SYNTH_PRESETS = ["tiny", "small", "full", "large"]


def dataset_options(f):
    """The options naming a dataset and its source files, shared by `run`, `train` and `probe`."""
    options = [
        click.option("--dataset", "-d", default="synth", show_default=True, help="synth, fma, mtg, closed, cloned or hf://owner/name[@rev]."),
        click.option("--data-root", type=click.Path(path_type=Path), help="Folder holding the dataset's audio."),
        click.option("--splits", type=click.Path(path_type=Path), help="Split files: a folder or splits.zip (fma, mtg)."),
        click.option("--manifest", type=click.Path(path_type=Path), help="Bring-your-own manifest (closed, cloned)."),
        click.option("--reference", type=click.Path(path_type=Path), help="Closed-set manifest the cloned set is tested against."),
        click.option("--drop-small", is_flag=True, default=None, help="Drop tracks with missing audio and singers below the minimum instead of stopping (fma, mtg)."),
        click.option("--min-train-tracks", type=click.IntRange(1), help="Minimum training tracks per singer (fma, mtg; default 1, the reference's rule)."),
        click.option("--synth-preset", type=click.Choice(SYNTH_PRESETS), help="Size of the generated corpus (synth; default small; large: every installed voice)."),
        click.option("--offsets", type=click.Choice(["vad", "hop", "error"]),
                     help="Rows without vocal offsets: the vocal detector finds them (vad), every 6 s (hop), or stop (error)."),
        click.option("--lenient", is_flag=True, default=None, help="Ignore unknown manifest columns with a warning (closed, cloned)."),
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
    for key in ("data_root", "splits", "manifest", "reference", "drop_small", "min_train_tracks", "offsets", "lenient"):
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


#: `run` options that --from-result may be combined with (they do not change the numbers).
_RERUN_OPTIONS = {"from_result", "output", "cache_dir", "progress"}


@cli.command()
@click.option("--model", "-m", help="Registered name, file.py:Class, module:Class, DIR or hf://owner/repo[@rev].")
@click.option("--from-result", type=click.Path(path_type=Path),
              help="Rerun a result file with its recorded settings and say whether the scores match.")
@dataset_options
@device_option
@click.option("--preset", default="paper", show_default=True, help="Protocol preset: paper, paper-meansoftmax, paper-nologitnorm, quick (docs/protocol.md).")
@click.option("--runs", default=10, show_default=True, type=click.IntRange(1), help="Head trainings (seeds).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--class-counts", help="Comma-separated class counts to sweep, e.g. 100,200,300.")
@click.option("--sweep", is_flag=True, help="Sweep the preset's class counts (100 to 1,000 by 100; 10, 25, 50, all below 100 singers).")
@click.option("--probe", is_flag=True, help="Also run the similarity probe: embed the eval tracks' vocal and instrumental stems.")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(1), help="Segments per embedding batch.")
@click.option("--separator", help="Demucs model making vocal stems when the dataset has none: a known name "
              "(default mdx_extra), or a local folder or file of demucs weights.")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Result JSON (default: leaderboard/results/DATASET/MODEL--PRESET.json).")
@trust_options("separator", "plugin", "pickle")
@click.option("--engine", default="local", show_default=True, help="Who embeds: local, or ray (Ray Data; docs/scale.md).")
@click.option("--address", help="Ray cluster address for --engine ray, e.g. 10.0.0.1:6379 (default: start a local Ray).")
def run(**kw) -> None:
    """Evaluate a model on a dataset through the protocol and write its result."""
    from singerbench.leaderboard import render
    from singerbench.presets import PRESETS
    from singerbench.run import RunRequest, run_benchmark

    if kw["from_result"] is not None:
        return _rerun(kw)
    kw.pop("from_result")
    if not kw["model"]:
        raise UserError("run needs --model (or --from-result FILE)")
    if kw["preset"] not in PRESETS and kw["preset"] in SYNTH_PRESETS:
        raise UserError(
            f"--preset names the protocol preset ({', '.join(PRESETS)}); for the size of the generated corpus "
            f"write --synth-preset {kw['preset']}"
        )
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


def _rerun(kw: dict) -> None:
    """``run --from-result FILE``: the file's own request, written beside it as FILE.rerun.json by default."""
    from dataclasses import replace

    from click.core import ParameterSource

    from singerbench.leaderboard import render
    from singerbench.results import RunResult, compare_results, request_from_result
    from singerbench.run import run_benchmark

    ctx = click.get_current_context()
    given = [n for n in kw if n not in _RERUN_OPTIONS and ctx.get_parameter_source(n) != ParameterSource.DEFAULT]
    if given:
        flags = ", ".join("--" + n.replace("_", "-") for n in given)
        raise UserError(f"--from-result takes every setting from the file; drop {flags}")
    path: Path = kw["from_result"]
    original = RunResult.from_json(path)
    req = replace(request_from_result(original, str(path)), cache_dir=kw["cache_dir"], progress=_progress(kw),
                  output=kw["output"] or path.with_suffix(".rerun.json"))
    click.echo("rerunning: " + " ".join(original.request["argv"]), err=True)
    result, out = run_benchmark(req)
    click.echo(render([result]).to_markdown())
    click.echo(f"result written to {out}")
    differences = compare_results(original, result)
    if differences:
        raise UserError(f"the rerun differs from {path}: " + "; ".join(differences[:5]))
    click.echo(f"reproduced {path}: identical scores and per-track predictions")


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
@click.option("--separator", help="Demucs model for vocal stems when the dataset has none (a known name, or a "
              "local folder or file of demucs weights).")
@trust_options("separator")
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
@click.option("--min-vocal-ratio", type=float,
              help="Keep a track vocal in at least this share of its 3 s segments [default: the paper's track rule, 0.5].")
@click.option("--min-tracks", default=5, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
def splits_build(dataset: str, metadata: Path, out: Path, data_root: Path | None, vocal_table: Path | None,
                 min_vocal_ratio: float | None, min_tracks: int, seed: int) -> None:
    """Filter tracks and singers as the paper did, draw val/test tracks with a seed, write the split files."""
    from singerbench.splitbuilder import build_splits
    from singerbench.vad import MIN_VOCAL_SHARE

    _, report = build_splits(dataset, metadata, out, data_root=data_root, vocal_table=vocal_table,
                             min_vocal_ratio=MIN_VOCAL_SHARE if min_vocal_ratio is None else min_vocal_ratio,
                             min_tracks=min_tracks, seed=seed)
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
@trust_options("plugin", "pickle")
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
    from singerbench import report_page
    from singerbench.leaderboard import render, result_files, write
    from singerbench.report import Entry
    from singerbench.results import RunResult

    paths = list(results) or [Path("leaderboard") / "results"]
    entries = [Entry(f, RunResult.from_json(f)) for f in result_files(paths)]  # each file read once
    if not entries:
        raise UserError("no results found; run `singerbench run --model mfcc --dataset synth` first")
    board = render([e.result for e in entries])
    page = report_page.build(entries, out)  # the page: ranks, intervals and figures
    write(board, out, html=page.html)
    click.echo(board.to_markdown())


@cli.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder for report.md, figures/*.svg and the self-contained index.html.")
@dataset_options
@click.pass_context
def report(ctx: click.Context, results: tuple[Path, ...], out: Path, **kw) -> None:
    """The paper's figures, 95 % intervals, paired ranking and probes from result files (re-runs nothing).

    The context probe reads each result's dataset from the cache as its request records it (nothing is rendered);
    dataset options, when given, name the dataset for all results instead.
    """
    from singerbench import report_page
    from singerbench.report import load_entries

    options = _collect_dataset_options(kw)
    manifest = None
    if ctx.get_parameter_source("dataset") is not click.core.ParameterSource.DEFAULT or options:
        from singerbench.datasets import load_dataset

        manifest = load_dataset(kw["dataset"], {"cache_dir": kw["cache_dir"], "progress": _progress(kw)}, **options)
    built = report_page.build(load_entries(list(results)), out, manifest, cache_dir=kw["cache_dir"])
    written = report_page.write(built, out)
    click.echo(built.markdown)
    click.echo(f"report written to {out} ({len(written)} files; open {out / 'index.html'})")


@cli.command()
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@dataset_options
def probe(results: tuple[Path, ...], **kw) -> None:
    """What models listen to on cloned tracks: the voice, or the singer whose backing they hear.

    Each result is probed on the dataset it records; dataset options, when given, override that for all.
    Results that cannot be probed are named with the reason; nothing is rendered or separated."""
    from click.core import ParameterSource

    from singerbench.probe import probe_paths

    ctx = click.get_current_context()
    options = _collect_dataset_options(kw)
    _progress(kw)
    given = options or ctx.get_parameter_source("dataset") != ParameterSource.DEFAULT
    report = probe_paths(list(results), cache_dir=kw["cache_dir"], dataset=(kw["dataset"], options) if given else None)
    click.echo(report.to_markdown())
    if not report.rows:
        raise UserError(f"no result could be probed ({len(report.skipped)} skipped, see the notes above)")


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
        return _fail(str(e))
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except (KeyboardInterrupt, click.Abort):
        click.echo("interrupted: work done so far is kept; run the same command again to resume", err=True)
        return 130
    except OSError as e:  # the machine refused something (disk full, permissions): say which file, in one line
        where = f" ({e.filename})" if e.filename else ""
        return _fail(f"{e.strerror or _first_line(e)}{where}; work done so far is kept")
    except Exception as e:  # a bug: still one line, and the way to see more
        return _fail(f"unexpected {type(e).__name__}: {_first_line(e)} (this is a bug in singerbench or a plugin; "
                     f"rerun with --debug or {DEBUG_ENV}=1 for the traceback)")
    return 0


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else "no message"


def _fail(message: str) -> int:
    """One ``error:`` line (the traceback too with --debug), exit status 1."""
    if _debugging():
        traceback.print_exc()
    click.echo(f"error: {' '.join(message.split())}", err=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
