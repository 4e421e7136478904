"""CLMR (contrastive learning of musical representations) as a plugin, and its checkpoint loader.

The encoder is :class:`~singerbench.baselines.samplecnn.SampleCNN` on 22,050 Hz mono audio. A 6 s segment
(132,300 samples) is longer than the encoder's 59,049-sample window and not a multiple of it, so it is cut
into ``ceil(T / 59049)`` = 3 chunks at evenly spaced starts (0, 36,625 and 73,251: the first begins and the
last ends with the segment, so every sample is seen and none is padded); the chunk embeddings are averaged.
A segment shorter than one chunk is zero-padded at the end to one chunk.

Weights: the public CLMR checkpoints (Apache-2.0), e.g. ``clmr_checkpoint_10000.pt`` (a plain state dict
``encoder.sequential.N...`` + ``projector.*``) or a PyTorch Lightning ``.ckpt`` (``state_dict`` with
``model.encoder.`` keys); see :func:`load_clmr_checkpoint`.
"""

from __future__ import annotations

import math
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import torch

from singerbench.baselines.samplecnn import CHUNK_SAMPLES, SampleCNN
from singerbench.baselines.speaker import file_digest
from singerbench.embedder import Embedder
from singerbench.errors import UserError
from singerbench.trust import how_to_trust
from singerbench.trust import trusted as user_trusts


def _read(path: Path, trusted: bool) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "unsupported global" not in str(exc).lower():  # not a torch pickle: truncated or foreign file
            raise UserError(f"cannot read CLMR checkpoint {path}: {exc}") from exc
        # Lightning checkpoints may pickle hyper-parameter objects, which the safe loader refuses.
        if not (trusted or user_trusts("pickle")):
            raise UserError(
                f"{path} holds pickled Python objects besides tensors, which could run code; "
                f"{how_to_trust('pickle')} (in Python: trusted=True)"
            ) from exc
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc2:
            raise UserError(f"cannot read CLMR checkpoint {path}: {exc2}") from exc2
    except Exception as exc:  # truncated file, not a torch file, ...
        raise UserError(f"cannot read CLMR checkpoint {path}: {exc}") from exc


def _strip(state: dict, prefix: str) -> OrderedDict:
    return OrderedDict((k[len(prefix) :], v) for k, v in state.items() if k.startswith(prefix))


def load_clmr_checkpoint(path: str | os.PathLike, trusted: bool = False) -> OrderedDict:
    """SampleCNN state dict (keys ``sequential.N...``) from a public CLMR checkpoint, checked key by key.

    Accepts ``clmr_checkpoint_*.pt`` (``encoder.*`` keys; ``projector.*`` ignored), the Lightning form
    (``state_dict`` with ``model.encoder.*``; everything else ignored) and a bare encoder state dict. A
    classifier ``fc.*`` is dropped (CLMR's representation is the encoder output). Missing keys, unexpected
    keys and shape mismatches raise :class:`UserError` naming the first few.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"CLMR checkpoint not found: {path}")
    raw = _read(path, trusted)
    if not isinstance(raw, dict):
        raise UserError(f"{path} is not a CLMR checkpoint: it holds a {type(raw).__name__}, not a state dict")
    if "state_dict" in raw and isinstance(raw["state_dict"], dict):  # PyTorch Lightning
        inner = raw["state_dict"]
        state = _strip(inner, "model.encoder.") or _strip(inner, "encoder.")
    else:
        state = _strip(raw, "encoder.") or OrderedDict(
            (k, v) for k, v in raw.items() if k.startswith("sequential.")
        )
    if not state:
        keys = list(raw.get("state_dict", raw))[:5]
        raise UserError(
            f"{path} has no CLMR encoder weights (no 'encoder.'/'model.encoder.' keys; first keys: {keys})"
        )
    state = OrderedDict((k, v) for k, v in state.items() if not k.startswith("fc."))

    expected = SampleCNN().state_dict()
    optional = {k for k in expected if k.endswith("num_batches_tracked")}
    missing = [k for k in expected if k not in state and k not in optional]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k}: {tuple(state[k].shape)} instead of {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and (not torch.is_tensor(state[k]) or state[k].shape != v.shape)
    ]
    problems = []
    if missing:
        problems.append(
            f"missing keys {missing[:5]}" + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
        )
    if unexpected:
        problems.append(
            f"unexpected keys {unexpected[:5]}"
            + (f" (+{len(unexpected) - 5})" if len(unexpected) > 5 else "")
        )
    if wrong:
        problems.append(f"shape mismatches {wrong[:5]}")
    if problems:
        raise UserError(f"{path} does not match CLMR's SampleCNN: " + "; ".join(problems))
    for k in optional:
        state.setdefault(k, expected[k])
    return OrderedDict((k, state[k]) for k in expected)


def chunk_starts(n_samples: int, chunk: int = CHUNK_SAMPLES) -> list[int]:
    """Evenly spaced chunk starts covering ``n_samples`` (first at 0, last ending at the end)."""
    if n_samples <= chunk:
        return [0]
    n = math.ceil(n_samples / chunk)
    return [(i * (n_samples - chunk)) // (n - 1) for i in range(n)]


class CLMREmbedder(Embedder):
    """CLMR SampleCNN embedding of a 6 s mixture segment: mean over 59,049-sample chunks (512-d)."""

    name = "clmr"
    sample_rate = 22050
    channels = 1
    input_kind = "mixture"
    segment_seconds = 6.0
    embedding_dim = 512

    def __init__(self, checkpoint: str | None = None, seed: int = 0) -> None:
        super().__init__()
        self.checkpoint = str(checkpoint) if checkpoint else None
        self.seed = int(seed)
        self.encoder = SampleCNN(seed=self.seed)
        #: set by a weights loader after ``load_state_dict``; ``None`` means random initialisation.
        self._weights_id: str | None = None
        if self.checkpoint:
            # No ``trusted`` argument on purpose: constructor arguments can come from a downloaded config.json;
            # unpickling is allowed only by the user (command line or environment, see singerbench.trust).
            self.encoder.load_state_dict(load_clmr_checkpoint(self.checkpoint))
            self._weights_id = f"clmr-sha256:{file_digest(Path(self.checkpoint))}"
        self.eval()

    def config(self) -> dict:
        # The checkpoint path is left out on purpose: the weights travel in the state dict (a weights folder
        # written by ``save_pretrained``), and a machine-specific path must not end up in config.json.
        return {"seed": self.seed}

    def weights_id(self) -> str:
        return self._weights_id or f"random-init:{self.seed}"

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        if batch.dim() != 3 or batch.shape[1] != 1:
            raise UserError(f"clmr expects mono audio (B, 1, T), got {tuple(batch.shape)}")
        wav = batch.float()
        if wav.shape[-1] < CHUNK_SAMPLES:
            wav = torch.nn.functional.pad(wav, (0, CHUNK_SAMPLES - wav.shape[-1]))
        starts = chunk_starts(wav.shape[-1])
        chunks = torch.stack([wav[..., s : s + CHUNK_SAMPLES] for s in starts], dim=1)  # (B, n, 1, L)
        out = self.encoder(chunks.reshape(-1, 1, CHUNK_SAMPLES))
        return out.reshape(wav.shape[0], len(starts), -1).mean(dim=1)
