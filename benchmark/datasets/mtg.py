"""MTG-Jamendo singer splits of the paper (572 singers, 7,710 songs): published split files + the user's audio."""

from __future__ import annotations

from pathlib import Path

from singerbench.datasets import register_dataset
from singerbench.datasets.published import MIN_TRAIN_TRACKS, load_published, published_status
from singerbench.manifest import Manifest

NEEDS = "MTG-Jamendo audio (--data-root DIR holding 14/214.mp3 ...) and the paper's splits.zip (--splits PATH)"


def audio_root(data_root: Path) -> Path:
    return data_root


def audio_path(root: Path, file_id: str) -> Path:
    """``file_id`` is the dataset's PATH column (``82/382.mp3``), relative to the audio root."""
    return root / file_id


def track_id(file_id: str) -> str:
    return Path(file_id).stem


def status(data_root: Path | str | None = None, splits: Path | str | None = None, **_: object) -> tuple[bool, str]:
    return published_status("mtg", data_root, splits)


@register_dataset(
    "mtg", description="MTG-Jamendo singer splits of the paper (real songs)", needs=NEEDS, status=status
)
def load(
    data_root: Path | str | None = None,
    splits: Path | str | None = None,
    drop_small: bool = False,
    min_train_tracks: int = MIN_TRAIN_TRACKS,
) -> Manifest:
    """Load the published MTG-Jamendo splits over the audio in ``data_root`` (see docs/datasets.md)."""
    return load_published(
        "mtg",
        "mtg",
        data_root=data_root,
        splits=splits,
        audio_path=audio_path,
        audio_root=audio_root,
        track_id=track_id,
        drop_small=drop_small,
        min_train_tracks=min_train_tracks,
        description="MTG-Jamendo singer splits of Desblancs et al. (ISMIR 2024); audio: MTG-Jamendo (CC licences)",
    )
