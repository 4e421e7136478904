"""The plugin contract: what an embedding model states about itself and the one method it implements.

A plugin is a ``torch.nn.Module`` subclass of :class:`Embedder`. It declares, as class attributes, the audio it
wants (sample rate, channels, input kind, segment length) and the size of its output; the harness delivers
exactly that audio and calls :meth:`Embedder.embed` on batches. Frontends (log-mel, MFCC, ...) live inside the
plugin, so any model fits. The harness freezes the plugin: it is put in eval mode and called under
``torch.inference_mode``.
"""

from __future__ import annotations

from typing import ClassVar

import torch

INPUT_KINDS = ("mixture", "vocals", "instrumental")


class Embedder(torch.nn.Module):
    """Base class of every embedding plugin.

    Subclasses set the class attributes below and implement :meth:`embed`. A plugin with weights overrides
    :meth:`weights_id` so that embeddings from different weights never share a cache entry.
    """

    #: registry name, e.g. ``"vocal"``. A class that leaves it empty is named after itself everywhere (store,
    #: results, leaderboard: see :meth:`plugin_name`), unless it is registered under a name (entry point or
    #: ``register_model``), which the registry then writes here. A weights folder may set it per instance.
    name: ClassVar[str] = ""
    #: sample rate in Hz of the waveforms :meth:`embed` receives.
    sample_rate: ClassVar[int] = 16000
    #: 1 (mono) or 2 (stereo; mono sources are duplicated to both channels).
    channels: ClassVar[int] = 1
    #: ``"mixture"`` (the full song), ``"vocals"`` (the vocal stem) or ``"instrumental"`` (the backing without
    #: the voice); a stem the dataset lacks is separated (and cached).
    input_kind: ClassVar[str] = "mixture"
    #: length in seconds of one segment.
    segment_seconds: ClassVar[float] = 6.0
    #: size D of one embedding.
    embedding_dim: ClassVar[int] = 0

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        """Map waveforms ``(B, channels, samples)`` (float32, peak-normalised per track) to ``(B, D)``."""
        raise NotImplementedError

    def weights_id(self) -> str:
        """Identity of the weights: a Hub revision, a file hash, or ``"none"`` for a model without weights."""
        return "none"

    def plugin_name(self) -> str:
        """The one name of this plugin: ``name`` when set (instance or class), else the class's own name."""
        return self.name or type(self).__name__

    def identity(self) -> dict:
        """Who this plugin is, decided here and read by the store, results and leaderboard alike:
        ``{"name", "weights_id", "config"}``."""
        return {"name": self.plugin_name(), "weights_id": str(self.weights_id()), "config": self.config()}

    def config(self) -> dict:
        """JSON-serialisable constructor arguments: ``type(self)(**self.config())`` rebuilds the architecture.

        Saved as ``config.json`` beside the weights, so a weights folder or Hub repo can rebuild the plugin.
        """
        return {}

    @property
    def segment_samples(self) -> int:
        return int(round(self.segment_seconds * self.sample_rate))

    def audio_config(self) -> dict:
        """Everything about the input audio that changes an embedding: part of the embedding store's key."""
        return {
            "sample_rate": int(self.sample_rate),
            "channels": int(self.channels),
            "input_kind": self.input_kind,
            "segment_seconds": float(self.segment_seconds),
        }

    def forward(self, batch: torch.Tensor) -> torch.Tensor:  # lets a plugin be called like any module
        return self.embed(batch)
