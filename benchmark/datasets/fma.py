"""FMA singer splits of the paper (1,019 singers, 11,676 songs): published split files + the user's FMA full audio."""

from __future__ import annotations

from pathlib import Path

from singerbench.datasets import register_dataset
from singerbench.datasets.published import MIN_TRAIN_TRACKS, load_published, published_status
from singerbench.manifest import Manifest

NEEDS = "FMA full audio (--data-root DIR holding fma_full/) and the paper's splits.zip (--splits PATH)"


def audio_root(data_root: Path) -> Path:
    """FMA full unpacks to ``fma_full/``; accept DATA_ROOT itself when it already is that folder."""
    sub = data_root / "fma_full"
    return sub if sub.is_dir() else data_root


def audio_path(root: Path, file_id: str) -> Path:
    """``000123.mp3`` lives at ``fma_full/000/000123.mp3``."""
    return root / file_id[:3] / file_id


def track_id(file_id: str) -> str:
    return Path(file_id).stem


def status(data_root: Path | str | None = None, splits: Path | str | None = None, **_: object) -> tuple[bool, str]:
    return published_status("fma", data_root, splits)


@register_dataset("fma", description="FMA singer splits of the paper (real songs)", needs=NEEDS, status=status)
def load(
    data_root: Path | str | None = None,
    splits: Path | str | None = None,
    drop_small: bool = False,
    min_train_tracks: int = MIN_TRAIN_TRACKS,
) -> Manifest:
    """Load the published FMA splits over the audio in ``data_root`` (see docs/datasets.md)."""
    return load_published(
        "fma",
        "fma",
        data_root=data_root,
        splits=splits,
        audio_path=audio_path,
        audio_root=audio_root,
        track_id=track_id,
        drop_small=drop_small,
        min_train_tracks=min_train_tracks,
        description="FMA singer splits of Desblancs et al. (ISMIR 2024); audio: FMA full (CC licences per track)",
    )
