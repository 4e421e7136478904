"""Vocal stems by source separation (Demucs 4.1), for plugins that listen to vocals on datasets without stems.

Each track's mixture is separated once; its vocal stem is cached on disk as 16-bit FLAC at the mixture's own
sample rate and length (sample-aligned with the mixture), under
``<cache>/separation/<model>/<separator signature>/<sha256 of the mixture file>.flac``, and beside it the
accompaniment (the sum of the model's other sources) as ``<sha256>.instrumental.flac``. Writes are atomic,
so an interrupted run keeps every finished track and resumes. A stem that would clip is scaled down as a
whole (harmless: the SegmentSource peak-normalises each track anyway).

Weights: ``repo=DIR`` loads a local demucs repository (``NAME.yaml`` naming checkpoint signatures plus
``SIG-CHECKSUM.th`` files, the layout ``demucs.pretrained.get_model(name, repo=DIR)`` reads). Without it, the
weights come from the Hugging Face Hub repo demucs itself uses (``adefossez/HTDemucs`` for ``htdemucs``):
from the local Hub cache when they are there (no network), else downloaded; with ``HF_HUB_OFFLINE=1`` and
an empty cache the separator fails at once with a UserError instead of retrying for 25 s.

demucs is an optional dependency (``pip install 'singerbench[separation]'``), imported only when used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Sequence
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

DEFAULT_MODEL = "htdemucs"
HF_NAMESPACE = "adefossez"
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


class DemucsSeparator:
    """Separates vocal stems with a Demucs model (``htdemucs`` by default) and caches them on disk."""

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
        checkpoints = {p.stem.rsplit("-", 1)[0] if "-" in p.stem else p.stem: p for p in repo.glob("*.th")}
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

        repo_id = _hf_repo_id(self.model_name)
        name = self.model_name.split("/", 1)[-1]
        offline = bool(constants.HF_HUB_OFFLINE)

        def fetch(filename: str) -> Path:
            try:  # the cache first: no network round trip when the weights are already here
                return Path(hf_hub_download(repo_id, filename, local_files_only=True))
            except Exception:
                if offline:
                    raise UserError(
                        f"demucs weights {repo_id}/{filename} are not in the Hugging Face cache and HF_HUB_OFFLINE "
                        "is set: run once with network access, or pass a local demucs repository (repo=DIR)"
                    ) from None
            try:
                return Path(hf_hub_download(repo_id, filename))
            except Exception as e:
                raise UserError(
                    f"cannot download demucs weights {repo_id}/{filename} ({type(e).__name__}): check the "
                    "network, or pass a local demucs repository (repo=DIR)"
                ) from None

        bag = fetch(f"{name}.yaml")
        return [bag] + [fetch(f"{sig}.safetensors") for sig in _bag_models(bag)]

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
            if self.repo is not None:
                from demucs.pretrained import get_model

                model = get_model(self.model_name, repo=self.repo)
            else:
                from demucs.hf import load_safetensors_model

                models = [load_safetensors_model(f) for f in files[1:]]
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
        path = self.stem_file(track)
        if not path.is_file():
            self._separate_into_cache(track)
        return path

    def instrumental(self, track: Track) -> Path:
        """The cached accompaniment of ``track`` (the non-vocal sources summed), separated now if need be."""
        path = self.instrumental_file(track)
        if not path.is_file():
            self._separate_into_cache(track)
        return path

    def separate_all(self, tracks: Sequence[Track], progress: bool = True, kind: str = "vocals") -> list[Path]:
        """The ``kind`` stems (vocals or instrumental) of all ``tracks``, separating those not cached yet."""
        from tqdm.auto import tqdm

        target = {"vocals": self.stem_file, "instrumental": self.instrumental_file}[kind]
        get = self.vocals if kind == "vocals" else self.instrumental
        todo = [t for t in tracks if not target(t).is_file()]
        if todo:
            log.info("separating the %s of %d of %d tracks with %s (cached, resumable)", kind, len(todo), len(tracks),
                     self.model_name)
            bar = tqdm(todo, desc=f"separating {kind} ({self.model_name})", unit="track", disable=not progress)
            for t in bar:
                get(t)
        return [target(t) for t in tracks]

    def separate(self, mixture: Path) -> tuple[np.ndarray, int]:
        """Vocals of one file as ``(channels, samples)`` float32 at the file's own rate and length."""
        vocals, _, rate = self.separate_stems(mixture)
        return vocals, rate

    def separate_stems(self, mixture: Path) -> tuple[np.ndarray, np.ndarray, int]:
        """Vocals and accompaniment (the other sources summed) of one file, each as :meth:`separate` gives it.

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
