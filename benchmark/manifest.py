"""The Manifest: the one in-memory description of a dataset that every station reads.

Every dataset adapter (synth, fma, mtg, closed, cloned, hf) produces a Manifest; nothing downstream knows
which adapter made it. On disk it is one JSON file (``manifest.json``) whose layout is documented in
``docs/manifest.md``; audio paths in that file are relative to the file's folder unless absolute.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from singerbench.errors import UserError

ROLES = ("train", "val", "test", "cloned")
MANIFEST_FORMAT = "singerbench-manifest/1"


@dataclass(frozen=True)
class Track:
    """One song: its audio, who sings it, which role it plays and where its voice is active.

    ``singers`` holds one id for a real song and one or more target ids for a cloned song (a duet names
    two). ``vocal_offsets`` are the start times, in seconds, of segments in which the voice is active.
    """

    id: str
    audio: Path
    singers: tuple[str, ...]
    role: str
    vocal_offsets: tuple[float, ...] = ()
    vocals: Path | None = None
    instrumental: Path | None = None
    genre: str | None = None
    language: str | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)
    #: where ``vocal_offsets`` came from: ``given`` (the dataset), ``vad@<threshold>`` or ``hop`` (computed)
    offsets_from: str = "given"

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise UserError(f"track {self.id!r}: role {self.role!r} is not one of {', '.join(ROLES)}")
        if not self.singers:
            raise UserError(f"track {self.id!r} names no singer")

    def stem(self, kind: str) -> Path:
        """The audio file a plugin of input kind ``kind`` listens to, if the dataset has it."""
        if kind == "mixture":
            return self.audio
        if kind == "vocals":
            if self.vocals is None:
                raise LookupError(f"track {self.id!r} has no vocal stem")
            return self.vocals
        if kind == "instrumental":
            if self.instrumental is None:
                raise LookupError(f"track {self.id!r} has no instrumental stem")
            return self.instrumental
        raise ValueError(f"unknown input kind {kind!r}")


@dataclass
class Manifest:
    """A dataset: its tracks and its singers, in class order (the order of the training data)."""

    name: str
    tracks: list[Track]
    singers: list[str]
    generated: bool = False
    description: str = ""
    root: Path | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(set(self.singers)) != len(self.singers):
            raise UserError(f"dataset {self.name!r}: singer list has duplicates")
        ids = [t.id for t in self.tracks]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})[:3]
            raise UserError(f"dataset {self.name!r}: duplicate track ids, e.g. {', '.join(dup)}")
        known = set(self.singers)
        for t in self.tracks:
            unknown = [s for s in t.singers if s not in known]
            if unknown:
                raise UserError(
                    f"dataset {self.name!r}: track {t.id!r} names singer {unknown[0]!r}, "
                    "who is not among the dataset's singers"
                )

    def by_role(self, role: str) -> list[Track]:
        return [t for t in self.tracks if t.role == role]

    def roles(self) -> list[str]:
        return [r for r in ROLES if any(t.role == r for t in self.tracks)]

    def segments(self, tracks: Iterable[Track] | None = None) -> Iterator[tuple[Track, float]]:
        """Every (track, vocal offset) pair, in manifest order: the unit the embedding store keys on."""
        for t in self.tracks if tracks is None else tracks:
            for off in t.vocal_offsets:
                yield t, off

    def provenance(self) -> dict[str, dict[str, str]]:
        """Per role, where the dataset's stems and offsets come from (before any separator runs).

        ``stems``/``instrumental``: ``given`` (every track of the role has that stem), ``none``, or
        ``given+none`` (some have); ``offsets``: the tracks' ``offsets_from`` values, ``+``-joined when mixed.
        """

        def joined(values: Iterable[str]) -> str:
            return "+".join(sorted(set(values)))

        out = {}
        for role in self.roles():
            tracks = self.by_role(role)
            out[role] = {
                "stems": joined("none" if t.vocals is None else "given" for t in tracks),
                "instrumental": joined("none" if t.instrumental is None else "given" for t in tracks),
                "offsets": joined(t.offsets_from for t in tracks),
            }
        return out

    def checksum(self) -> str:
        """SHA-256 of the split itself (ids, singers, roles, offsets, and where stems and offsets come from; not
        audio paths), for results: the same songs with given stems and with separated ones are different splits."""
        split = [
            [t.id, list(t.singers), t.role, [round(o, 4) for o in t.vocal_offsets]] for t in self.tracks
        ]
        doc = {"singers": self.singers, "tracks": split, "provenance": self.provenance()}
        blob = json.dumps(doc, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    # --- on disk -----------------------------------------------------------------------------------

    def to_json(self, path: Path) -> None:
        """Write ``manifest.json`` atomically; audio paths under the file's folder are stored relative."""
        path = Path(path)
        base = path.parent.resolve()

        def rel(p: Path | None) -> str | None:
            if p is None:
                return None
            p = Path(p).resolve()
            return str(p.relative_to(base)) if p.is_relative_to(base) else str(p)

        tracks = []
        for t in self.tracks:
            d = asdict(t)
            d.update(audio=rel(t.audio), vocals=rel(t.vocals), instrumental=rel(t.instrumental))
            d["singers"] = list(t.singers)
            d["vocal_offsets"] = list(t.vocal_offsets)
            d = {k: v for k, v in d.items() if v not in (None, {})}
            if d.get("offsets_from") == "given":
                del d["offsets_from"]
            tracks.append(d)
        doc = {
            "format": MANIFEST_FORMAT,
            "name": self.name,
            "generated": self.generated,
            "description": self.description,
            "singers": self.singers,
            "extra": self.extra,
            "tracks": tracks,
        }
        from singerbench.io import atomic_write_text

        atomic_write_text(path, json.dumps(doc, indent=1) + "\n")

    @classmethod
    def from_json(cls, path: Path) -> Manifest:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"manifest {path} does not exist")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"manifest {path} is not valid JSON: {e}") from None
        if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
            raise UserError(f"manifest {path} is not a {MANIFEST_FORMAT} file (missing or wrong 'format')")
        base = path.parent.resolve()
        try:
            return cls._from_doc(doc, base, path)
        except (KeyError, TypeError, ValueError, AttributeError) as e:  # a field of the wrong type or missing
            what = f"lacks the field {e.args[0]!r}" if isinstance(e, KeyError) else f"is malformed ({e})"
            raise UserError(f"manifest {path} {what}") from None

    @classmethod
    def _from_doc(cls, doc: dict, base: Path, path: Path) -> Manifest:
        """Build from a parsed ``manifest.json``; every field is checked for its type first (see from_json)."""

        def need(value: object, kind: type | tuple, what: str) -> None:
            if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
                names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
                raise UserError(f"manifest {path}: {what} must be {names}, got {type(value).__name__}")

        def absolute(p: str | None, what: str) -> Path | None:
            if p is None:
                return None
            need(p, str, what)
            return base / p if not Path(p).is_absolute() else Path(p)

        need(doc.get("name"), str, "'name'")
        need(doc.get("singers"), list, "'singers'")
        need(doc.get("tracks", []), list, "'tracks'")
        need(doc.get("extra", {}), dict, "'extra'")
        for s in doc["singers"]:
            need(s, (str, int), "every singer")
        tracks = []
        for i, d in enumerate(doc.get("tracks", [])):
            where = f"track #{i}"
            need(d, dict, where)
            for key in ("id", "audio", "singers", "role"):
                if key not in d:
                    raise UserError(f"manifest {path}: {where} lacks the field {key!r}")
            need(d["id"], (str, int), f"{where}: 'id'")
            need(d["singers"], list, f"{where}: 'singers'")
            need(d["role"], str, f"{where}: 'role'")
            offsets = d.get("vocal_offsets", [])
            need(offsets, list, f"{where}: 'vocal_offsets'")
            for o in offsets:
                need(o, (int, float), f"{where}: every vocal offset")
            for key in ("genre", "language"):
                if d.get(key) is not None:
                    need(d[key], str, f"{where}: {key!r}")
            need(d.get("extra", {}), dict, f"{where}: 'extra'")
            tracks.append(
                Track(
                    id=str(d["id"]),
                    audio=absolute(d["audio"], f"{where}: 'audio'"),
                    singers=tuple(str(s) for s in d["singers"]),
                    role=d["role"],
                    vocal_offsets=tuple(float(o) for o in offsets),
                    vocals=absolute(d.get("vocals"), f"{where}: 'vocals'"),
                    instrumental=absolute(d.get("instrumental"), f"{where}: 'instrumental'"),
                    genre=d.get("genre"),
                    language=d.get("language"),
                    extra=d.get("extra", {}),
                    offsets_from=str(d.get("offsets_from", "given")),
                )
            )
        return cls(
            name=doc["name"],
            tracks=tracks,
            singers=[str(s) for s in doc["singers"]],
            generated=bool(doc.get("generated", False)),
            description=str(doc.get("description", "")),
            root=base,
            extra=doc.get("extra", {}),
        )
