"""Vocal stems by source separation (Demucs 4.1), for plugins that listen to vocals on datasets without stems.

Each track's mixture is separated once; its vocal stem is cached on disk as 16-bit FLAC at the mixture's own
sample rate and length (sample-aligned with the mixture), under
``<cache>/separation/<model>/<separator signature>/<sha256 of the mixture file>.flac``, and beside it the
accompaniment (the sum of the model's other sources) as ``<sha256>.instrumental.flac``. Writes are atomic,
so an interrupted run keeps every finished track and resumes. A stem that would clip is scaled down as a
whole (harmless: the SegmentSource peak-normalises each track anyway).

Weights: a name of :data:`KNOWN_SEPARATORS` (default ``mdx_extra``, the reference's separator) comes from
the Hugging Face Hub repo demucs itself uses (``adefossez/Demucs-mdx_extra``): from the local Hub cache when
it is there (no network), else downloaded; with ``HF_HUB_OFFLINE=1`` and an empty cache the separator fails
at once with a UserError instead of retrying for 25 s. ``repo=DIR`` (``--separator DIR`` or a file in it)
loads a local demucs repository (``NAME.yaml`` naming checkpoint signatures plus ``SIG-CHECKSUM.th`` or
``SIG.safetensors`` files).

No code from weights: demucs files name the Python class to build (safetensors metadata ``klass``, or a
pickled class in ``.th`` files). Here only the Demucs classes of :data:`KNOWN_CLASSES` are built, ``.th``
files are read with ``torch.load(weights_only=True)``, and a known name's bag must list the checkpoint
signatures demucs ships for it. Anything else (another Hub repo, another class, a full unpickling) needs
the user's explicit trust: ``--trust-separator`` or ``SINGERBENCH_TRUST=separator`` (:mod:`singerbench.trust`).

demucs is an optional dependency (``pip install 'singerbench[separation]'``), imported only when used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import soundfile as sf
import soxr

from singerbench.audio import RESAMPLE_QUALITY, audio_info, file_digest, load_audio
from singerbench.errors import UserError
from singerbench.io import atomic_write
from singerbench.manifest import Track
from singerbench.paths import station_dir
from singerbench.trust import how_to_trust, trusted

HF_NAMESPACE = "adefossez"


@dataclass(frozen=True)
class KnownSeparator:
    """A Demucs model that runs without trust: its Hub repo and the checkpoint signatures its bag must list."""

    name: str
    repo: str
    models: tuple[str, ...]
    revision: str = "main"


#: The Demucs models singerbench runs without trust; the signatures are those of demucs 4.1's own bag files
#: (``demucs/remote/*.yaml``), so a bag file on the Hub that lists other checkpoints is refused.
KNOWN_SEPARATORS: dict[str, KnownSeparator] = {
    k.name: k
    for k in (
        KnownSeparator("htdemucs", "adefossez/HTDemucs", ("955717e8",)),
        KnownSeparator("htdemucs_ft", "adefossez/HTDemucs-ft", ("f7e0c4bc", "d12395a8", "92cfc3b6", "04573f0d")),
        KnownSeparator("htdemucs_6s", "adefossez/HTDemucs-6s", ("5c90dfd2",)),
        KnownSeparator("hdemucs_mmi", "adefossez/Demucs-hdemucs_mmi", ("75fc33f5",)),
        KnownSeparator("mdx", "adefossez/Demucs-mdx", ("0d19c1c6", "7ecf8ec1", "c511e2ab", "7d865c68")),
        KnownSeparator("mdx_extra", "adefossez/Demucs-mdx_extra", ("e51eebcc", "a1d90b5c", "5d2d6c55", "cfa93e08")),
    )
}
#: The reference (pickle_embeddings.py of the paper's code) separates vocals with mdx_extra.
DEFAULT_MODEL = "mdx_extra"
#: The only classes a demucs weights file may name without trust.
KNOWN_CLASSES = ("demucs.demucs.Demucs", "demucs.hdemucs.HDemucs", "demucs.htdemucs.HTDemucs")
INSTALL_HINT = "install it with: pip install 'singerbench[separation]' (demucs==4.1.0)"
log = logging.getLogger("singerbench.separation")


@runtime_checkable
class Separator(Protocol):
    """What the SegmentSource needs from a separator: a cached vocal stem per track, and an identity."""

    def vocals(self, track: Track) -> Path: ...

    def instrumental(self, track: Track) -> Path: ...

    def separate_all(self, tracks: Sequence[Track], progress: bool = True, kind: str = "vocals") -> list[Path]: ...

    def separator_weights_id(self) -> str: ...


def _hf_repo_id(name: str) -> str:
    """The Hub repo demucs reads a named model from (same mapping as ``demucs.hf.hf_repo_name``)."""
    if "/" in name:
        namespace, name = name.split("/", 1)
    else:
        namespace = HF_NAMESPACE
    if name == "htdemucs":
        return f"{namespace}/HTDemucs"
    if name.startswith("htdemucs_"):
        return f"{namespace}/HTDemucs-{name[len('htdemucs_'):]}"
    return f"{namespace}/Demucs-{name}"


def _import_demucs() -> None:
    try:
        import demucs.apply  # noqa: F401
        import demucs.pretrained  # noqa: F401
    except ImportError as e:
        raise UserError(f"vocal separation needs demucs, which is not importable ({e}); {INSTALL_HINT}") from None


def _known_class(path: str, where: Path) -> type:
    """The class a weights file names, if it is a known Demucs class (or the user trusts separators)."""
    import importlib

    if path not in KNOWN_CLASSES and not trusted("separator"):
        raise UserError(
            f"demucs weights {where} name class {path!r}, not one of the known Demucs classes; building it "
            f"could run code: {how_to_trust('separator')}"
        )
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise UserError(f"demucs weights {where} name class {path!r}, which cannot be imported: {e}") from None


def _check_structure(node: Any, where: Path) -> None:
    """Refuse a safetensors ``structure`` that names a class outside :data:`KNOWN_CLASSES` (see demucs.hf)."""
    if isinstance(node, dict):
        if "_class" in node:
            _known_class(str(node["_class"]), where)
        for value in node.values():
            _check_structure(value, where)
    elif isinstance(node, list):
        for value in node:
            _check_structure(value, where)


def load_checkpoint(path: Path) -> Any:
    """One Demucs model from a ``.safetensors`` or ``.th`` file, building only known classes without trust."""
    from demucs.states import load_model

    path = Path(path)
    if path.suffix == ".safetensors":
        from demucs.hf import _decode_json, _unflatten_state
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
                tensors = {key: f.get_tensor(key) for key in f.keys()}
            structure = json.loads(metadata["structure"]) if "structure" in metadata else None
            klass = _known_class(str(metadata["klass"]), path)
            if structure is not None:
                _check_structure(structure, path)
            state = tensors if structure is None else _unflatten_state(tensors, structure)
            package = {"klass": klass, "args": _decode_json(json.loads(metadata["args"])),
                       "kwargs": _decode_json(json.loads(metadata["kwargs"])), "state": state}
        except UserError:
            raise
        except Exception as e:
            raise UserError(f"{path} is not a readable demucs safetensors file: {type(e).__name__}: {e}") from None
        return load_model(package)
    import pickle
    from fractions import Fraction

    import torch

    classes = [_known_class(c, path) for c in KNOWN_CLASSES]
    try:
        with torch.serialization.safe_globals([*classes, Fraction]):
            package = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if not trusted("separator"):
            raise UserError(
                f"demucs checkpoint {path} holds Python objects besides the known Demucs classes, which could run "
                f"code when unpickled: {how_to_trust('separator')}"
            ) from None
        package = torch.load(path, map_location="cpu", weights_only=False)
        log.warning("unpickled %s fully (trusted separator; %s)", path, str(e).splitlines()[0])
    except Exception as e:
        raise UserError(f"{path} is not a readable demucs checkpoint: {type(e).__name__}: {e}") from None
    if not isinstance(package, dict) or not {"klass", "args", "kwargs", "state"} <= set(package):
        raise UserError(f"{path} is not a demucs checkpoint (no klass/args/kwargs/state)")
    return load_model(package)


def separator_from_option(value: str, cache_dir: Path | None = None, device: str = "cpu") -> DemucsSeparator:
    """The separator ``--separator VALUE`` names: a known model name, a local folder or file, or (trusted) more.

    - a name of :data:`KNOWN_SEPARATORS`;
    - a folder holding ``NAME.yaml`` bag files and checkpoints (the one bag, or the one checkpoint, in it);
    - a bag file ``DIR/NAME.yaml`` or a checkpoint ``DIR/SIG[-CHECKSUM].th`` / ``DIR/SIG.safetensors``;
    - any other demucs name or ``owner/name`` Hub repo, only with ``--trust-separator``.
    """
    path = Path(value).expanduser()
    if path.is_dir():
        bags = sorted(path.glob("*.yaml"))
        checkpoints = sorted([*path.glob("*.th"), *path.glob("*.safetensors")])
        if len(bags) == 1:
            return DemucsSeparator(bags[0].stem, repo=path, cache_dir=cache_dir, device=device)
        if not bags and len(checkpoints) == 1:
            return DemucsSeparator(_checkpoint_sig(checkpoints[0]), repo=path, cache_dir=cache_dir, device=device)
        raise UserError(
            f"--separator {value}: the folder holds {len(bags)} bag files (.yaml) and {len(checkpoints)} "
            "checkpoints; name one of them: --separator DIR/NAME.yaml or DIR/CHECKPOINT.th"
        )
    if path.is_file():
        if path.suffix == ".yaml":
            return DemucsSeparator(path.stem, repo=path.parent, cache_dir=cache_dir, device=device)
        if path.suffix in (".th", ".safetensors"):
            return DemucsSeparator(_checkpoint_sig(path), repo=path.parent, cache_dir=cache_dir, device=device)
        raise UserError(f"--separator {value}: expected a demucs bag (.yaml) or checkpoint (.th, .safetensors)")
    if value not in KNOWN_SEPARATORS and not trusted("separator"):
        raise UserError(
            f"--separator {value!r} is neither a known Demucs model ({', '.join(KNOWN_SEPARATORS)}) nor an "
            f"existing local folder or file; other Hub models may run code: {how_to_trust('separator')}"
        )
    return DemucsSeparator(value, cache_dir=cache_dir, device=device)


def _checkpoint_sig(path: Path) -> str:
    """``SIG`` of ``SIG-CHECKSUM.th`` or ``SIG.safetensors`` (how demucs repositories name checkpoints)."""
    return path.stem.rsplit("-", 1)[0] if path.suffix == ".th" and "-" in path.stem else path.stem


class DemucsSeparator:
    """Separates vocal stems with a Demucs model (``mdx_extra`` by default) and caches them on disk."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        repo: Path | None = None,
        cache_dir: Path | None = None,
        device: str = "cpu",
        segment: float | None = None,
        shifts: int = 1,
        overlap: float = 0.25,
    ) -> None:
        self.model_name = model
        self.repo = None if repo is None else Path(repo)
        self.cache_dir = cache_dir
        self.device = device
        self.segment = segment
        self.shifts = int(shifts)
        self.overlap = float(overlap)
        self._files: list[Path] | None = None
        self._model: Any = None
        self._sig: str | None = None
        self.separated = 0  # tracks separated by this instance (the rest came from the cache)

    # --- weights -----------------------------------------------------------------------------------

    def weight_files(self) -> list[Path]:
        """The bag file and checkpoints that define the model, located without loading it."""
        if self._files is None:
            self._files = self._local_files() if self.repo is not None else self._hub_files()
        return self._files

    def _local_files(self) -> list[Path]:
        repo = self.repo
        assert repo is not None
        if not repo.is_dir():
            raise UserError(f"demucs model repository {repo} does not exist or is not a folder")
        found = sorted([*repo.glob("*.th"), *repo.glob("*.safetensors")])
        checkpoints = {_checkpoint_sig(p): p for p in found}
        name = self.model_name
        if name in checkpoints:
            return [checkpoints[name]]
        bag = repo / f"{name}.yaml"
        if not bag.is_file():
            raise UserError(f"demucs model repository {repo} has neither {name}.yaml nor a {name} checkpoint")
        sigs = _bag_models(bag)
        missing = [s for s in sigs if s not in checkpoints]
        if missing:
            raise UserError(f"demucs model {name} in {repo} names checkpoint {missing[0]}, which is not there")
        return [bag] + [checkpoints[s] for s in sigs]

    def _hub_files(self) -> list[Path]:
        from huggingface_hub import constants, hf_hub_download

        known = KNOWN_SEPARATORS.get(self.model_name)
        if known is None and not trusted("separator"):
            raise UserError(
                f"demucs model {self.model_name!r} is not one of the known models ({', '.join(KNOWN_SEPARATORS)}); "
                f"its weights could run code: {how_to_trust('separator')}"
            )
        repo_id = known.repo if known else _hf_repo_id(self.model_name)
        name = self.model_name.split("/", 1)[-1]
        offline = bool(constants.HF_HUB_OFFLINE)

        def fetch(filename: str) -> Path:
            try:  # the cache first: no network round trip when the weights are already here
                return Path(hf_hub_download(repo_id, filename, local_files_only=True))
            except Exception:
                if offline:
                    raise UserError(
                        f"demucs weights {repo_id}/{filename} are not in the Hugging Face cache and HF_HUB_OFFLINE "
                        "is set: run once with network access, or pass a local demucs folder (--separator DIR)"
                    ) from None
            try:
                return Path(hf_hub_download(repo_id, filename))
            except Exception as e:
                raise UserError(
                    f"cannot download demucs weights {repo_id}/{filename} ({type(e).__name__}): check the "
                    "network, or pass a local demucs folder (--separator DIR)"
                ) from None

        bag = fetch(f"{name}.yaml")
        sigs = _bag_models(bag)
        if known is not None and tuple(sigs) != known.models and not trusted("separator"):
            raise UserError(
                f"the bag file of demucs model {name} in {repo_id} lists checkpoints {sigs}, not the known "
                f"{list(known.models)}: {how_to_trust('separator')}"
            )
        return [bag] + [fetch(f"{sig}.safetensors") for sig in sigs]

    def separator_weights_id(self) -> str:
        """``demucs:<model>:<sig>``; sig hashes the weight files and the settings that change a stem."""
        if self._sig is None:
            h = hashlib.sha256()
            for f in self.weight_files():
                h.update(f.name.encode() + b"\0" + file_digest(f).encode() + b"\0")
            settings = {"shifts": self.shifts, "overlap": self.overlap, "segment": self.segment, "format": "flac16"}
            h.update(json.dumps(settings, sort_keys=True).encode())
            self._sig = h.hexdigest()[:12]
        return f"demucs:{self.model_name}:{self._sig}"

    def load_model(self) -> Any:
        """The demucs model (a BagOfModels or single model) in eval mode, loaded once."""
        if self._model is not None:
            return self._model
        _import_demucs()
        files = self.weight_files()
        from demucs.apply import BagOfModels

        try:
            if files[0].suffix != ".yaml":  # a single checkpoint
                model = load_checkpoint(files[0])
            else:
                models = [load_checkpoint(f) for f in files[1:]]
                bag = _read_yaml(files[0])
                model = BagOfModels(models, bag.get("weights"), bag.get("segment"))
        except UserError:
            raise
        except Exception as e:
            raise UserError(f"cannot load demucs model {self.model_name!r}: {type(e).__name__}: {e}") from None
        if "vocals" not in list(model.sources):
            raise UserError(f"demucs model {self.model_name!r} has no 'vocals' source (it has {model.sources})")
        model.eval()
        self._model = model
        return model

    # --- stems ---------------------------------------------------------------------------------------

    def stem_dir(self) -> Path:
        sig = self.separator_weights_id().rsplit(":", 1)[-1]
        return station_dir("separation", self.cache_dir) / self.model_name.replace("/", "--") / sig

    def stem_file(self, track: Track) -> Path:
        """Where the vocal stem of ``track`` lives (or will): keyed on the mixture file's content hash."""
        return self.stem_dir() / f"{file_digest(track.audio)[:32]}.flac"

    def instrumental_file(self, track: Track) -> Path:
        """Where the accompaniment of ``track`` (every source but the vocals, summed) lives, beside its vocals."""
        return self.stem_file(track).with_suffix(".instrumental.flac")

    def _separate_into_cache(self, track: Track) -> None:
        vocals, backing, rate = self.separate_stems(track.audio)
        for path, stem in ((self.stem_file(track), vocals), (self.instrumental_file(track), backing)):
            atomic_write(path, lambda tmp, x=stem: sf.write(str(tmp), x.T, rate, format="FLAC", subtype="PCM_16"))
        self.separated += 1

    def vocals(self, track: Track) -> Path:
        """The cached vocal stem of ``track``, separated now if it is not cached yet."""
        return self._cached(self.stem_file(track), track)

    def instrumental(self, track: Track) -> Path:
        """The cached accompaniment of ``track`` (the non-vocal sources summed), separated now if need be."""
        return self._cached(self.instrumental_file(track), track)

    def _cached(self, path: Path, track: Track) -> Path:
        """``path``, one of ``track``'s two stem files; one separation writes both when it is missing."""
        if not path.is_file():
            self._separate_into_cache(track)
        return path

    def separate_all(self, tracks: Sequence[Track], progress: bool = True, kind: str = "vocals") -> list[Path]:
        """The ``kind`` stems (vocals or instrumental) of all ``tracks``, separating those not cached yet."""
        from singerbench.progress import progress as progress_lines

        target = {"vocals": self.stem_file, "instrumental": self.instrumental_file}[kind]
        todo = [t for t in tracks if not target(t).is_file()]
        if todo:
            log.info("separating the %s of %d of %d tracks with %s (cached, resumable)", kind, len(todo), len(tracks),
                     self.model_name)
            # a bar on a terminal, else a line at a bounded interval (singerbench.progress)
            for t in progress_lines(todo, f"separating {kind} ({self.model_name})", bar=progress, unit="track"):
                self._cached(target(t), t)
        return [target(t) for t in tracks]

    def separate_stems(self, mixture: Path) -> tuple[np.ndarray, np.ndarray, int]:
        """Vocals and accompaniment (the other sources summed) of one file, each ``(channels, samples)`` float32
        at the file's own rate and length.

        Runs demucs the way its own ``Separator.separate_tensor`` does (mean/std normalisation, overlapping
        chunks); the random time shifts are seeded from the file's content, so a stem is reproducible.
        """
        import torch
        from demucs.apply import apply_model

        model = self.load_model()
        info = audio_info(mixture)
        wav = torch.from_numpy(load_audio(mixture, int(model.samplerate), int(model.audio_channels)))
        ref = wav.mean(0)
        mean, std = ref.mean(), ref.std() + 1e-8
        state = random.getstate()
        random.seed(int(file_digest(mixture)[:16], 16))
        try:
            with torch.inference_mode():
                out = apply_model(
                    model,
                    ((wav - mean) / std)[None],
                    shifts=self.shifts,
                    split=True,
                    overlap=self.overlap,
                    segment=self.segment,
                    device=self.device,
                    progress=False,
                )
        finally:
            random.setstate(state)
        sources = (out[0] * std + mean).cpu().numpy().astype(np.float32)
        v = list(model.sources).index("vocals")
        backing = np.delete(sources, v, axis=0).sum(axis=0)
        rate = int(model.samplerate)
        return _fit(sources[v], info, rate), _fit(backing, info, rate), info.sample_rate


def _fit(stem: np.ndarray, info: Any, model_rate: int) -> np.ndarray:
    """A separated stem at the mixture's rate, length and channel count, scaled down as a whole if it would clip."""
    if info.sample_rate != model_rate:
        stem = soxr.resample(stem.T, model_rate, info.sample_rate, quality=RESAMPLE_QUALITY).T
    stem = np.ascontiguousarray(stem, dtype=np.float32)
    # exactly the mixture's length, so stem and mixture stay sample-aligned
    if stem.shape[1] < info.frames:
        stem = np.pad(stem, ((0, 0), (0, info.frames - stem.shape[1])))
    stem = stem[:, : info.frames]
    if info.channels == 1 and stem.shape[0] == 2:
        stem = stem.mean(axis=0, keepdims=True)
    peak = float(np.max(np.abs(stem))) if stem.size else 0.0
    if peak > 0.999:
        stem = stem * np.float32(0.999 / peak)
    return stem


def _read_yaml(path: Path) -> dict:
    import yaml

    with open(path) as f:
        doc = yaml.safe_load(f)
    if not isinstance(doc, dict):
        raise UserError(f"demucs bag file {path} is not a YAML mapping")
    return doc


def _bag_models(path: Path) -> list[str]:
    models = _read_yaml(path).get("models")
    if not isinstance(models, list) or not models:
        raise UserError(f"demucs bag file {path} lists no models")
    return [str(m) for m in models]
