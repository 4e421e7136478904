"""The paper's AST-small singer encoder and its three plugins: ``vocal``, ``mixture`` and ``hybrid``.

Architecture (Desblancs et al., ISMIR 2024), plain torch so it runs without timm/torchaudio:

- frontend: 16 kHz stereo, 6 s (96,000 samples); torchaudio ``MelSpectrogram`` defaults with n_fft 800,
  hop 400, 128 HTK mel bins, no filter normalisation, 0 Hz to 8 kHz, centred STFT with reflect padding,
  periodic Hann, power 2; the 241 frames are cut to 240; ``log(x + 1e-10)`` → ``(B, 2, 128, 240)``.
- 16×16 patches by a strided ``Conv2d(2, width)`` (8×15 = 120 patches, frequency-major order), a class
  token and learned positions (121 tokens);
- ViT-small blocks: width 384, 12 pre-norm layers, 6 heads, MLP ratio 4, GELU, qkv bias, LayerNorm eps
  1e-6; no final LayerNorm (the reference keeps only the blocks);
- ``Linear(width → 2048) + GELU`` on the class token: the 2048-d embedding.

``ASTProjector`` is the training-only head (2048 → 1024 → 1024 → 2048, L2-normalised). State-dict keys
follow timm's ViT names (``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``blocks.N.norm1``,
``blocks.N.attn.qkv``, ``blocks.N.attn.proj``, ``blocks.N.norm2``, ``blocks.N.mlp.fc1``/``fc2``) plus
``head``; a plugin holds its encoder as ``encoder``, so plugin keys are ``encoder.<encoder key>``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from singerbench.baselines.frontend import MelSpectrogram
from singerbench.embedder import Embedder
from singerbench.errors import UserError

SAMPLE_RATE = 16000
SEGMENT_SAMPLES = 96000
N_FFT = 800
HOP = 400
N_FRAMES = 240
PATCH = 16
LOG_OFFSET = 1e-10


class LogMel(nn.Module):
    """Waveforms ``(B, C, 96000)`` → log-mel ``(B, C, n_mels, 240)`` (torchaudio conventions, see module doc)."""

    def __init__(self, n_mels: int = 128, n_frames: int = N_FRAMES) -> None:
        super().__init__()
        self.n_frames = n_frames
        self.mel = MelSpectrogram(SAMPLE_RATE, N_FFT, HOP, n_mels, htk=True, norm=None, pad_mode="reflect")

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        mel = self.mel(wav)
        if mel.shape[-1] < self.n_frames:
            raise UserError(
                f"AST needs {self.n_frames * HOP} samples per segment at {SAMPLE_RATE} Hz, got {wav.shape[-1]}"
            )
        return torch.log(mel[..., : self.n_frames] + LOG_OFFSET)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block (timm's ViT ``Block`` without drop-path or layer scale)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ASTEncoder(nn.Module):
    """Stereo waveform ``(B, 2, 96000)`` → ``(B, embedding_dim)``; the log-mel frontend is inside.

    Defaults are the paper's AST-small; smaller ``depth``/``width``/``heads``/``embedding_dim`` give a
    CPU-sized model with the same structure. Initialisation is deterministic given ``seed`` and leaves the
    global random state untouched.
    """

    def __init__(
        self,
        depth: int = 12,
        width: int = 384,
        heads: int = 6,
        mlp_ratio: float = 4.0,
        embedding_dim: int = 2048,
        n_mels: int = 128,
        channels: int = 2,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if n_mels % PATCH:
            raise ValueError(f"n_mels must be a multiple of {PATCH}, got {n_mels}")
        self.kwargs = {
            "depth": int(depth),
            "width": int(width),
            "heads": int(heads),
            "mlp_ratio": float(mlp_ratio),
            "embedding_dim": int(embedding_dim),
            "n_mels": int(n_mels),
            "channels": int(channels),
            "seed": int(seed),
        }
        self.embedding_dim = int(embedding_dim)
        self.frontend = LogMel(n_mels)
        self.n_patches = (n_mels // PATCH) * (N_FRAMES // PATCH)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.patch_embed = nn.Module()
            self.patch_embed.proj = nn.Conv2d(channels, width, kernel_size=PATCH, stride=PATCH)
            self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
            self.pos_embed = nn.Parameter(torch.zeros(1, self.n_patches + 1, width))
            self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio) for _ in range(depth))
            self.head = nn.Linear(width, embedding_dim)
            self._init_weights()

    def _init_weights(self) -> None:
        """timm's ViT initialisation (truncated normal, std 0.02) for tokens and the blocks' linear layers.

        The output layer (width -> embedding_dim) keeps PyTorch's default initialisation: in the reference it
        is a plain ``nn.Linear`` added after the timm model was built.
        """
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for module in self.blocks.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def tokens(self, spec: torch.Tensor) -> torch.Tensor:
        """Log-mel ``(B, C, n_mels, 240)`` → final token sequence ``(B, 1 + patches, width)``."""
        x = self.patch_embed.proj(spec).flatten(2).transpose(1, 2)
        if x.shape[1] != self.n_patches:
            raise UserError(
                f"AST expects {self.n_patches} patches, got {x.shape[1]} from {tuple(spec.shape)}"
            )
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.head(self.tokens(self.frontend(wav))[:, 0]))


class ASTProjector(nn.Module):
    """Training-only projector on the embedding: Linear+BN+ReLU, Linear+BN+ReLU, Linear (no bias), L2 norm."""

    def __init__(self, in_dim: int = 2048, hidden_dim: int = 1024, out_dim: int = 2048) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, out_dim, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(x), dim=-1)


class _ASTEmbedder(Embedder):
    """Shared plugin body: an :class:`ASTEncoder` plus an honest weights identity."""

    sample_rate = SAMPLE_RATE
    channels = 2
    segment_seconds = 6.0
    embedding_dim = 2048

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.encoder = ASTEncoder(**kwargs)
        self.embedding_dim = self.encoder.embedding_dim  # a smaller configuration changes D
        self.channels = self.encoder.kwargs["channels"]
        #: set by a weights loader after ``load_state_dict``; ``None`` means random initialisation.
        self._weights_id: str | None = None
        self.eval()

    @classmethod
    def from_encoder(cls, encoder: ASTEncoder, weights_id: str) -> _ASTEmbedder:
        """Wrap a trained encoder (e.g. fresh from the training loop) as this plugin."""
        plugin = cls(**encoder.kwargs)
        plugin.encoder.load_state_dict(encoder.state_dict())
        plugin._weights_id = weights_id
        return plugin

    def config(self) -> dict:
        return dict(self.encoder.kwargs)

    def weights_id(self) -> str:
        if self._weights_id:
            return self._weights_id
        arch = json.dumps(self.config(), sort_keys=True).encode()
        # "/2": the output layer's default initialisation (random-init weights differ from "random-init:")
        return f"random-init/2:{self.encoder.kwargs['seed']}:{hashlib.sha256(arch).hexdigest()[:8]}"

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        if batch.dim() != 3 or batch.shape[1] != self.encoder.kwargs["channels"]:
            raise UserError(f"{self.name} expects (B, {self.channels}, T) audio, got {tuple(batch.shape)}")
        return self.encoder(batch.float())


class VocalEmbedder(_ASTEmbedder):
    """AST trained contrastively on vocal stems; embeds (separated) vocals."""

    name = "vocal"
    input_kind = "vocals"


class MixtureEmbedder(_ASTEmbedder):
    """AST trained contrastively on full mixtures; embeds mixtures."""

    name = "mixture"
    input_kind = "mixture"


class HybridEmbedder(_ASTEmbedder):
    """AST trained on paired mixture and vocal views of the same singer; embeds mixtures."""

    name = "hybrid"
    input_kind = "mixture"
