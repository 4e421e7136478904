"""``singerbench run``: one pass through the stations, from a model spec and a dataset to a RunResult on disk.

Model → Manifest → SegmentSource → EmbeddingStore → Protocol → RunResult. This module only wires the stations;
each does its own job and knows nothing of the others.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from singerbench import __version__
from singerbench.datasets import load_dataset
from singerbench.engines import EmbedJob, get_engine
from singerbench.errors import UserError
from singerbench.io import check_writable
from singerbench.manifest import Manifest
from singerbench.paths import station_dir
from singerbench.presets import Preset, get_preset
from singerbench.protocol import ProtocolData, TrackEmbeddings, run_protocol
from singerbench.registry import ResolvedModel, resolve_model
from singerbench.results import DatasetInfo, ModelInfo, RunResult, default_result_path
from singerbench.segments import SegmentSource
from singerbench.similarity import embed_stems, probe_tracks, similarities
from singerbench.store import EmbeddingStore, EmbeddingTable
from singerbench.verification import verify

EVAL_ROLES = ("test", "cloned")
#: the Demucs model that makes vocal stems when a vocals plugin meets a dataset without them: the
#: reference's (its pickle_embeddings.py separates with mdx_extra); --separator chooses another
DEFAULT_SEPARATOR = "mdx_extra"
#: dataset options that have a flag of their own on `singerbench run` (the others go as -D KEY=VALUE).
_OPTION_FLAGS = {"data_root": "--data-root", "splits": "--splits", "manifest": "--manifest",
                 "reference": "--reference", "preset": "--synth-preset", "min_train_tracks": "--min-train-tracks"}


@dataclass
class RunRequest:
    """Everything ``singerbench run`` was asked to do; what changes the numbers is recorded in the result's
    ``request`` (not ``cache_dir``, ``output``, ``leaderboard_dir``, ``progress``)."""

    model: str
    dataset: str
    dataset_options: dict = field(default_factory=dict)
    preset: str = "paper"
    runs: int = 10
    seed: int = 0
    device: str = "auto"
    cache_dir: Path | None = None
    output: Path | None = None
    leaderboard_dir: Path = Path("leaderboard")
    batch_size: int = 16
    class_counts: list[int] | None = None
    separator: str | None = None
    progress: bool = True
    engine: str = "local"  # who embeds: a name in singerbench.engines.ENGINES (local, ray)
    address: str | None = None  # Ray cluster address for engine "ray"; None starts a local Ray
    #: take the preset's class-count sweep (capped by the dataset) instead of ``class_counts``
    sweep: bool = False
    #: also run the similarity probe: embed the eval tracks' vocal and instrumental stems (docs/results.md)
    probe: bool = False


def pick_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device} asked for, but torch sees no CUDA device here; use --device cpu")
    return device


def protocol_data(manifest: Manifest, table: EmbeddingTable) -> ProtocolData:
    """Group the store's segment embeddings by track and role, with class indices in the manifest's order."""
    index = {s: i for i, s in enumerate(manifest.singers)}

    def track_embeddings(role: str) -> list[TrackEmbeddings]:
        return [
            TrackEmbeddings(t.id, tuple(index[s] for s in t.singers), table.for_track(t.id))
            for t in manifest.by_role(role)
        ]

    return ProtocolData(
        singers=list(manifest.singers),
        train=track_embeddings("train"),
        val=track_embeddings("val"),
        eval_sets={role: track_embeddings(role) for role in EVAL_ROLES if manifest.by_role(role)},
    )


def _json_ready(value: object) -> object:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return value


def command_line(record: dict) -> list[str]:
    """An equivalent ``singerbench run ...`` argv for a request record (flags where they exist, else -D)."""
    argv = ["singerbench", "run", "--model", record["model"], "--dataset", record["dataset"]]
    for key, value in sorted(record["dataset_options"].items()):
        if key == "drop_small":
            argv += ["--drop-small"] if value else []
        elif key in _OPTION_FLAGS:
            argv += [_OPTION_FLAGS[key], str(value)]
        else:
            argv += ["-D", f"{key}={value}"]
    argv += ["--preset", record["preset"], "--runs", str(record["runs"]), "--seed", str(record["seed"])]
    if record["class_counts"]:
        argv += ["--class-counts", ",".join(str(c) for c in record["class_counts"])]
    argv += ["--batch-size", str(record["batch_size"]), "--device", record["device"]]
    if record["separator"]:
        argv += ["--separator", record["separator"]]
    return argv


def request_record(req: RunRequest, *, preset_version: str, device: str, separator: str | None,
                   class_counts: list[int] | None = None) -> dict:
    """The result's ``request``: the settings that reproduce it, with the resolved device, separator and class
    counts (``--sweep`` is recorded as the counts it chose)."""
    class_counts = class_counts if class_counts is not None else req.class_counts
    options = _json_ready(dict(req.dataset_options))
    assert isinstance(options, dict)
    offsets = options.get("offsets")
    record = {
        "model": req.model,
        "dataset": req.dataset,
        "dataset_options": options,
        "preset": req.preset,
        "preset_version": preset_version,
        "runs": int(req.runs),
        "seed": int(req.seed),
        "class_counts": list(class_counts) if class_counts else None,
        "separator": separator,
        "batch_size": int(req.batch_size),
        "device": device,
        "offsets": None if offsets is None else str(offsets),
        "package_version": __version__,
        "torch_version": torch.__version__,
    }
    return {"argv": command_line(record), **record}


def track_info(manifest: Manifest) -> dict[str, dict]:
    """Per eval track what the analyses group by, so a report needs no dataset: genre, language, and the number
    of training songs of its singer (the fewest among a clone's targets)."""
    songs: dict[str, int] = {}
    for t in manifest.by_role("train"):
        songs[t.singers[0]] = songs.get(t.singers[0], 0) + 1
    return {
        t.id: {"genre": t.genre, "language": t.language, "train_songs": min(songs.get(s, 0) for s in t.singers)}
        for role in EVAL_ROLES for t in manifest.by_role(role)
    }


def class_counts_for(req: RunRequest, singers: int, preset: Preset) -> list[int] | None:
    """The class counts to run: the preset's sweep over a dataset of ``singers`` with ``--sweep``, else as asked."""
    if not req.sweep:
        return req.class_counts
    if req.class_counts:
        raise UserError("--sweep and --class-counts both name class counts; give one of them")
    return preset.sweep_counts(singers)


def make_separator(name: str | None, cache_dir: Path | None, device: str):
    """A Demucs separator for datasets without vocal stems, built only when a vocals plugin needs one.

    ``name`` is a known Demucs model, a local folder or file, or (with trust) any other demucs model; see
    :func:`singerbench.separation.separator_from_option`.
    """
    if name is None:
        return None
    from singerbench.separation import separator_from_option

    return separator_from_option(name, cache_dir=cache_dir, device=device)


def check_outputs(output: Path, cache_dir: Path | None, separator: object | None) -> None:
    """Probe-write the result's own folder and the stem cache, so an unwritable place fails now, not after the
    work (the embedding cache was probed before the dataset loaded)."""
    output = Path(output)
    if output.is_dir():
        raise UserError(f"the result path {output} is a folder; give a file name (--output DIR/result.json)")
    check_writable(output.parent, "the result")
    if separator is not None:
        check_writable(station_dir("separation", cache_dir), "the vocal-stem cache")


def probe_subjects(manifest: Manifest) -> list:
    """The eval tracks the similarity probe embeds; a UserError when the dataset has no stems to probe."""
    tracks = probe_tracks(manifest, EVAL_ROLES)
    if not tracks:
        raise UserError(
            f"--probe needs eval tracks with both a vocal and an instrumental stem; dataset {manifest.name!r} has "
            "none (the generated singers have them: --dataset synth)"
        )
    return tracks


def similarity_probe(
    store: EmbeddingStore, embedder, manifest: Manifest, table: EmbeddingTable, req: RunRequest, device: str
) -> dict:
    """Embed the eval tracks' stems (store hits after the first time) and compute the similarity probe."""
    tracks = probe_subjects(manifest)
    stems, counters = embed_stems(store, embedder, manifest, tracks, batch_size=req.batch_size, device=device,
                                  progress=req.progress)
    return {"stems": "dataset", "sets": similarities(manifest, table, stems, EVAL_ROLES), "store": counters}


def run_benchmark(req: RunRequest) -> tuple[RunResult, Path]:
    """Evaluate one model on one dataset with one preset; write and return the result."""
    started = time.perf_counter()
    get_engine(req.engine)  # an unknown engine is a user error before anything is loaded
    device = pick_device(req.device)
    preset = get_preset(req.preset)
    model: ResolvedModel = resolve_model(req.model)
    embedder = model.embedder
    # before the dataset loads (which may render or download for minutes): the places every run writes
    check_writable(station_dir("embeddings", req.cache_dir), "the embedding cache")
    check_writable(Path(req.output).parent if req.output else Path(req.leaderboard_dir) / "results", "the result")
    manifest = load_dataset(
        req.dataset, {"cache_dir": req.cache_dir, "progress": req.progress}, **req.dataset_options
    )
    class_counts = class_counts_for(req, len(manifest.singers), preset)
    if req.probe:
        probe_subjects(manifest)  # fail before any embedding work
    # a --separator that names nothing usable is refused even where no separation is needed
    given = make_separator(req.separator, req.cache_dir, device)
    probe = SegmentSource.for_embedder(embedder)
    needs_separation = any(probe.needs_separation(t) for t in manifest.tracks)
    # no separator (and no weights) when the dataset holds every stem the plugin listens to
    separator_name = (req.separator or DEFAULT_SEPARATOR) if needs_separation else None
    separator = (given or make_separator(separator_name, req.cache_dir, device)) if needs_separation else None
    who = embedder.identity()
    output = req.output or default_result_path(
        req.leaderboard_dir, who["name"], manifest.name, preset.name, who["weights_id"]
    )
    check_outputs(output, req.cache_dir, separator)
    source = SegmentSource.for_embedder(embedder, separator=separator)
    source.prepare(manifest.tracks, progress=req.progress)

    store = EmbeddingStore(station_dir("embeddings", req.cache_dir))
    t0 = time.perf_counter()
    job = EmbedJob(model_spec=req.model, separator=separator_name,
                   cache_dir=req.cache_dir, batch_size=req.batch_size, device=device, progress=req.progress,
                   address=req.address)
    table = get_engine(req.engine)(job, store, embedder, manifest, source)
    embed_s = time.perf_counter() - t0
    embedded_computed, embedded_reused = store.computed, store.reused

    data = protocol_data(manifest, table)
    outcome = run_protocol(
        data,
        preset,
        runs=req.runs,
        seed=req.seed,
        device=device,
        class_counts=class_counts,
        progress=req.progress,
    )
    # after the protocol, which checks the data and names any bad track
    analyses: dict = {"track_info": track_info(manifest), "verification": verify(data, seed=req.seed)}
    if req.probe:
        analyses["similarity"] = similarity_probe(store, embedder, manifest, table, req, device)
    result = RunResult.from_outcome(
        outcome,
        ModelInfo.from_embedder(embedder, model.spec, model.source),
        DatasetInfo.from_manifest(manifest, source),
        embedding_seconds=embed_s,
        total_seconds=time.perf_counter() - started,
        computed=embedded_computed,
        reused=embedded_reused,
        request=request_record(req, preset_version=preset.version, device=device, separator=separator_name,
                               class_counts=class_counts),
        **analyses,
    )
    try:
        result.to_json(output)
    except OSError as e:
        raise UserError(
            f"cannot write the result {output}: {e.strerror or e}; the embeddings are cached, so the same command "
            "run again (with space, or another --output) only trains the heads again"
        ) from None
    return result, output
