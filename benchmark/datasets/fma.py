"""FMA singer splits of the paper (1,019 singers, 11,676 songs): published split files + the user's FMA full audio."""

from __future__ import annotations

from singerbench.datasets.published import PublishedLayout, register_published

FMA = PublishedLayout(
    name="fma",
    title="FMA",
    needs="FMA full audio (--data-root DIR holding fma_full/) and the paper's splits.zip (--splits PATH)",
    description="FMA singer splits of Desblancs et al. (ISMIR 2024); audio: FMA full (CC licences per track)",
    audio_subfolder="fma_full",
    shard_chars=3,
)
register_published(FMA)
