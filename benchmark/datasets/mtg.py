"""MTG-Jamendo singer splits of the paper (572 singers, 7,710 songs): published split files + the user's audio."""

from __future__ import annotations

from singerbench.datasets.published import PublishedLayout, register_published

MTG = PublishedLayout(
    name="mtg",
    title="MTG-Jamendo",
    needs="MTG-Jamendo audio (--data-root DIR holding 14/214.mp3 ...) and the paper's splits.zip (--splits PATH)",
    description="MTG-Jamendo singer splits of Desblancs et al. (ISMIR 2024); audio: MTG-Jamendo (CC licences)",
)
register_published(MTG)
