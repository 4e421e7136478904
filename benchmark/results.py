"""RunResult: one versioned JSON file per ``singerbench run``, the unit the leaderboard is rendered from.

The layout is the JSON Schema ``schema/result-v2.json`` (package data, draft 2020-12), documented field by
field in docs/results.md. Accuracies are stored as fractions in [0, 1]; std over runs is the sample std
(ddof=1) when there are two or more runs, else 0. A result names everything needed to rerun it (``request``);
:func:`request_from_result` turns that back into a :class:`~singerbench.run.RunRequest`. Files of the previous
layout (``singerbench-result/1``, no ``request``) are still read, against their own schema.
"""

from __future__ import annotations

import json
import platform
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from singerbench import PROTOCOL_VERSION, __version__
from singerbench.errors import UserError
from singerbench.io import atomic_write_text

if TYPE_CHECKING:
    from singerbench.embedder import Embedder
    from singerbench.manifest import Manifest
    from singerbench.protocol import ProtocolOutcome
    from singerbench.run import RunRequest
    from singerbench.segments import SegmentSource

SCHEMA_ID = "singerbench-result/2"
SCHEMA_FILE = "schema/result-v2.json"
#: every layout this singerbench reads: schema id -> packaged schema file (writing always uses SCHEMA_ID).
READABLE_SCHEMAS = {"singerbench-result/1": "schema/result-v1.json", SCHEMA_ID: SCHEMA_FILE}
#: the keys of ``RunResult.request`` (the cross-team contract; docs/results.md says what each holds).
REQUEST_KEYS = ("argv", "model", "dataset", "dataset_options", "preset", "preset_version", "runs", "seed",
                "class_counts", "separator", "batch_size", "device", "offsets", "package_version", "torch_version")


@dataclass
class ModelInfo:
    """Which embedding model made the embeddings, and how the user named it."""

    name: str
    spec: str  # the --model argument as given
    weights_id: str
    input_kind: str
    sample_rate: int
    channels: int
    embedding_dim: int
    source: str  # "builtin", "entry point PKG", "file", "module", "hub"

    @classmethod
    def from_embedder(cls, embedder: Embedder, spec: str, source: str) -> ModelInfo:
        who = embedder.identity()
        return cls(
            name=who["name"],
            spec=spec,
            weights_id=who["weights_id"],
            input_kind=embedder.input_kind,
            sample_rate=int(embedder.sample_rate),
            channels=int(embedder.channels),
            embedding_dim=int(embedder.embedding_dim),
            source=source,
        )


@dataclass
class DatasetInfo:
    """Which split the heads were trained and scored on (the checksum pins the split itself).

    ``provenance`` says per role (train, val, test, cloned) where the audio the model heard and the offsets
    came from: ``{"stems": "given" | "separator:<name>@<weights_id>" | "none", "offsets": "given" |
    "vad@<threshold>" | "hop"}`` (``+``-joined when a role mixes sources; ``none`` = the mixture itself).
    """

    name: str
    checksum: str
    generated: bool
    singers: int
    tracks: dict[str, int]  # role -> track count
    provenance: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def from_manifest(cls, manifest: Manifest, source: SegmentSource | None = None) -> DatasetInfo:
        """``source``: the SegmentSource the model listened through, which knows where each track's stem came from
        (without it, the provenance says what the dataset itself holds)."""
        tracks = {r: len(manifest.by_role(r)) for r in manifest.roles()}
        held = manifest.provenance()
        provenance = {}
        for role in manifest.roles():
            stems = held[role]["stems"] if source is None else "+".join(
                sorted({source.provenance(t) for t in manifest.by_role(role)}))
            provenance[role] = {"stems": stems, "offsets": held[role]["offsets"]}
        return cls(manifest.name, manifest.checksum(), bool(manifest.generated), len(manifest.singers), tracks,
                   provenance)


def host_info() -> dict[str, str]:
    """Versions and platform of the machine that ran the protocol."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def utc_now() -> str:
    """Now, as ISO 8601 UTC with a ``Z`` (the ``created`` field)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RunResult:
    """The content of one result file; :meth:`to_dict` is exactly the JSON document."""

    model: ModelInfo
    dataset: DatasetInfo
    preset: dict[str, Any]  # {"name", "version", "params"}
    seed: int
    runs: int
    class_counts: list[int]
    device: str
    max_epochs_bound: bool
    scores: list[dict[str, Any]]  # [{class_count, eval_set, tracks, top1: summary, top5: summary}]
    run_details: list[dict[str, Any]]
    timings: dict[str, float]  # embedding_s, protocol_s, total_s
    store: dict[str, int]  # computed, reused
    created: str = field(default_factory=utc_now)
    host: dict[str, str] = field(default_factory=host_info)
    singerbench_version: str = __version__
    protocol_version: str = PROTOCOL_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    #: how to rerun this result (keys REQUEST_KEYS); empty for files written before results recorded it.
    request: dict[str, Any] = field(default_factory=dict)
    #: the schema id the document was read with (written files are always SCHEMA_ID).
    schema: str = SCHEMA_ID
    #: per eval track: genre, language, train_songs (the analyses group by them; docs/results.md)
    track_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: per eval set: EER and minDCF of cosine trials (singerbench.verification)
    verification: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the similarity probe (singerbench.similarity), only with ``run --probe``
    similarity: dict[str, Any] = field(default_factory=dict)

    # --- building ---------------------------------------------------------------------------------------------

    @classmethod
    def from_outcome(
        cls,
        outcome: ProtocolOutcome,
        model: ModelInfo,
        dataset: DatasetInfo,
        *,
        embedding_seconds: float = 0.0,
        total_seconds: float | None = None,
        computed: int = 0,
        reused: int = 0,
        created: str | None = None,
        extra: dict[str, Any] | None = None,
        request: dict[str, Any] | None = None,
        track_info: dict[str, dict[str, Any]] | None = None,
        verification: dict[str, dict[str, Any]] | None = None,
        similarity: dict[str, Any] | None = None,
    ) -> RunResult:
        """Turn a protocol outcome plus what the CLI knows (model, dataset, timings, store counters) into a result."""
        p = outcome.preset
        scores = [
            {"class_count": c, "eval_set": name, "tracks": agg["tracks"], "top1": agg["top1"], "top5": agg["top5"]}
            for c, per_set in outcome.aggregate().items()
            for name, agg in per_set.items()
        ]
        details = []
        for r in outcome.results:
            evals = {
                name: {
                    "top1": s.top1,
                    "top5": s.top5,
                    "tracks": [asdict(t) for t in s.tracks],
                }
                for name, s in r.evals.items()
            }
            details.append(
                {
                    "class_count": r.class_count, "run": r.run, "seed": r.seed, "classes": list(r.classes),
                    "epochs": r.epochs, "best_epoch": r.best_epoch, "best_val_loss": r.best_val_loss,
                    "final_lr": r.final_lr, "max_epochs_bound": r.max_epochs_bound, "evals": evals,
                }
            )
        total = embedding_seconds + outcome.seconds if total_seconds is None else total_seconds
        return cls(
            model=model,
            dataset=dataset,
            preset={"name": p.name, "version": p.version, "params": p.params(), "leaderboard": p.leaderboard,
                    "deviations": list(p.deviations)},
            seed=outcome.seed,
            runs=outcome.runs,
            class_counts=list(outcome.class_counts),
            device=outcome.device,
            max_epochs_bound=outcome.any_max_epochs_bound,
            scores=scores,
            run_details=details,
            timings={"embedding_s": float(embedding_seconds), "protocol_s": float(outcome.seconds),
                     "total_s": float(total)},
            store={"computed": int(computed), "reused": int(reused)},
            created=created or utc_now(),
            extra=dict(extra or {}),
            request=dict(request or {}),
            track_info=dict(track_info or {}),
            verification=dict(verification or {}),
            similarity=dict(similarity or {}),
        )

    # --- reading ----------------------------------------------------------------------------------------------

    @property
    def dataset_options(self) -> dict[str, Any]:
        """The dataset options the request recorded (the corpus preset, seed, confound...); empty for old files."""
        return dict(self.request.get("dataset_options") or {})

    @property
    def main_class_count(self) -> int:
        """The class count of the main leaderboard table: the largest one."""
        return max(self.class_counts)

    def score(self, class_count: int, eval_set: str) -> dict[str, Any] | None:
        """The aggregate entry for (class count, eval set), or None when that pair was not scored."""
        for s in self.scores:
            if s["class_count"] == class_count and s["eval_set"] == eval_set:
                return s
        return None

    def eval_sets(self) -> list[str]:
        """Eval set names in the order test, cloned, then the others alphabetically."""
        return sorted({s["eval_set"] for s in self.scores}, key=lambda n: ({"test": 0, "cloned": 1}.get(n, 2), n))

    @property
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self.created.replace("Z", "+00:00"))

    # --- (de)serialising --------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "schema": SCHEMA_ID,
            "singerbench_version": self.singerbench_version,
            "protocol_version": self.protocol_version,
            "model": asdict(self.model),
            "dataset": asdict(self.dataset),
            "preset": self.preset,
            "seed": self.seed,
            "runs": self.runs,
            "class_counts": list(self.class_counts),
            "device": self.device,
            "max_epochs_bound": self.max_epochs_bound,
            "scores": self.scores,
            "run_details": self.run_details,
            "timings": self.timings,
            "store": self.store,
            "created": self.created,
            "host": self.host,
            "request": self.request,
        }
        if self.extra:
            doc["extra"] = self.extra
        for name in ("track_info", "verification", "similarity"):  # absent from older files: written when known
            if getattr(self, name):
                doc[name] = getattr(self, name)
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any], source: str = "result") -> RunResult:
        """Validate ``doc`` against the schema and build the result; UserError naming what is wrong otherwise."""
        validate(doc, source)
        return cls(
            model=ModelInfo(**doc["model"]),
            dataset=DatasetInfo(**doc["dataset"]),
            preset=doc["preset"],
            seed=doc["seed"],
            runs=doc["runs"],
            class_counts=list(doc["class_counts"]),
            device=doc["device"],
            max_epochs_bound=doc["max_epochs_bound"],
            scores=doc["scores"],
            run_details=doc["run_details"],
            timings=doc["timings"],
            store=doc["store"],
            created=doc["created"],
            host=doc["host"],
            singerbench_version=doc["singerbench_version"],
            protocol_version=doc["protocol_version"],
            extra=doc.get("extra", {}),
            request=doc.get("request") or {},
            schema=doc["schema"],
            track_info=doc.get("track_info", {}),
            verification=doc.get("verification", {}),
            similarity=doc.get("similarity", {}),
        )

    def to_json(self, path: Path | str) -> Path:
        """Validate, then write the document atomically; returns the path."""
        doc = self.to_dict()
        validate(doc, str(path))
        text = json.dumps(doc, indent=1, allow_nan=False, ensure_ascii=False) + "\n"
        atomic_write_text(Path(path), text)
        return Path(path)

    @classmethod
    def from_json(cls, path: Path | str) -> RunResult:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"result file {path} does not exist")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"result file {path} is not valid JSON: {e}") from None
        try:
            return cls.from_dict(doc, str(path))
        except (KeyError, TypeError, ValueError, AttributeError) as e:  # the schema let something odd through
            raise UserError(f"result file {path} is not usable: {type(e).__name__}: {e}") from None


@cache
def load_schema(schema_id: str = SCHEMA_ID) -> dict[str, Any]:
    """The packaged JSON Schema of one result layout (default: the current ``schema/result-v2.json``)."""
    return json.loads(files("singerbench").joinpath(READABLE_SCHEMAS[schema_id]).read_text(encoding="utf-8"))


def validate(doc: Any, source: str = "result") -> None:
    """Check ``doc`` against the schema it names (any of READABLE_SCHEMAS; SCHEMA_ID when it names none).

    A UserError listing every problem (field path: message) otherwise.
    """
    try:
        from jsonschema import Draft202012Validator
    except ImportError:  # pragma: no cover - jsonschema is a dependency
        raise UserError("validating result files needs the package 'jsonschema': pip install jsonschema") from None
    schema_id = doc.get("schema", SCHEMA_ID) if isinstance(doc, dict) else SCHEMA_ID
    if schema_id not in READABLE_SCHEMAS:
        raise UserError(
            f"{source}: field 'schema' is {schema_id!r}; this singerbench reads {', '.join(READABLE_SCHEMAS)}"
        )
    validator = Draft202012Validator(load_schema(schema_id))
    errors = sorted(validator.iter_errors(doc), key=lambda e: (list(e.absolute_path), e.message))
    if errors:
        lines = [f"  at {_path(e.absolute_path)}: {e.message}" for e in errors[:20]]
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise UserError(f"{source} is not a valid {schema_id} document:\n" + "\n".join(lines) + more)


def request_from_result(result: RunResult, source: str = "the result") -> RunRequest:
    """The :class:`~singerbench.run.RunRequest` that reproduces ``result``, from its recorded ``request``.

    A UserError when the result records none (files of ``singerbench-result/1``) or was made with a preset
    version this singerbench does not have (rerunning it would not reproduce it).
    """
    from singerbench.presets import get_preset
    from singerbench.run import RunRequest

    req = result.request
    if not req:
        raise UserError(
            f"{source} does not record how it was made (a {result.schema} file from singerbench "
            f"{result.singerbench_version}); rerun it by hand with `singerbench run`"
        )
    missing = [k for k in REQUEST_KEYS if k not in req]
    if missing:
        raise UserError(f"{source}: its request lacks {', '.join(missing)}")
    preset = get_preset(req["preset"])
    if preset.version != req["preset_version"]:
        raise UserError(
            f"{source} was made with preset {req['preset']} v{req['preset_version']}; this singerbench has "
            f"v{preset.version}, which would not reproduce it"
        )
    return RunRequest(
        model=req["model"],
        dataset=req["dataset"],
        dataset_options=dict(req["dataset_options"]),
        preset=req["preset"],
        runs=int(req["runs"]),
        seed=int(req["seed"]),
        device=req["device"],
        batch_size=int(req["batch_size"]),
        class_counts=list(req["class_counts"]) if req["class_counts"] else None,
        separator=req["separator"],
    )


def compare_results(a: RunResult, b: RunResult) -> list[str]:
    """How two results of one request differ in what they measured: scores and every run's per-track details.

    Empty when they agree exactly (timings, dates and store counters are not compared).
    """
    out = []
    if a.scores != b.scores:
        out.append("aggregate scores differ")
    strip = ("epochs", "best_epoch", "best_val_loss", "final_lr", "max_epochs_bound")
    for x, y in zip(a.run_details, b.run_details, strict=False):
        where = f"class count {x['class_count']}, run {x['run']}"
        if x["classes"] != y["classes"] or x["seed"] != y["seed"]:
            out.append(f"{where}: classes or seed differ")
        elif x["evals"] != y["evals"]:
            out.append(f"{where}: per-track predictions differ")
        elif any(x[k] != y[k] for k in strip):
            out.append(f"{where}: training course differs")
    if len(a.run_details) != len(b.run_details):
        out.append(f"{len(a.run_details)} vs {len(b.run_details)} runs")
    return out


def _path(parts: Any) -> str:
    p = "/".join(str(x) for x in parts)
    return f"/{p}" if p else "(top level)"


def sanitize(name: str) -> str:
    """A file-name-safe form of a model/dataset/preset name: runs of other characters become one ``_``."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return s or "unnamed"


def default_result_path(
    leaderboard_dir: Path | str, model: str, dataset: str, preset: str, weights_id: str | None = None
) -> Path:
    """``{leaderboard_dir}/results/{dataset}/{model}[@{weights_id[:12]}]--{preset}.json``, names sanitised."""
    stem = sanitize(model)
    if weights_id and weights_id != "none":
        stem += "@" + sanitize(weights_id[:12])
    return Path(leaderboard_dir) / "results" / sanitize(dataset) / f"{stem}--{sanitize(preset)}.json"
