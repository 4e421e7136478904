"""The paper's training recipe: singer-level contrastive learning of the AST encoder (Mixture, Vocal, Hybrid).

A batch holds B positive pairs (B = 128, the reference's ``training/parameters.py``). Each pair is drawn on the
fly: a singer, two *different* training-role songs of that singer, and in each song a random segment from its
vocal offsets, peak-normalised on its own 6 s window as the reference's ``AudioReader`` does. The input
decides what a side hears: ``mixture`` (the song), ``vocals`` (the vocal stem), or ``hybrid`` (each side
independently the stem or the mixture, with probability 1/2, so all four pairings occur). Singers in a batch
are distinct as long as there are at least B eligible singers; with fewer (a tiny corpus) singers repeat, and
a repeated singer's other pairs act as negatives. Anchors and positives go through the model in two forward
passes, as in the reference, so the projector's batch norm sees each view's batch on its own.

Encoder (the plugin's ``ASTEncoder``; its 2048-d output layer keeps PyTorch's default initialisation) +
``ASTProjector``; NT-Xent at temperature 0.2; Adam at 1e-4 with eps 1e-9; the LR halves after 25 epochs without
a better validation loss (``ReduceLROnPlateau``, factor 0.5, patience 25, floor 1e-7 = lr × 0.001, eps 1e-9);
an epoch is 32 training iterations and one pass over the validation pairs; training stops after 100 epochs
without a better validation loss, or at ``max_epochs``. The weights written at the end are the encoder of the
epoch with the best validation loss. Every constant, with the reference file it comes from, is in
docs/training.md.

Validation pairs are drawn once, with the seed, and never change: one pair per validation singer, from the
validation-role songs (the reference's validation file): two different val songs of the singer, or, where the
singer has a single val song (singerbench's layouts give one), that song and one of the singer's training
songs; each side a random vocal segment. The validation loss is the mean over batches of B pairs (a last batch
of one pair joins the one before). A manifest without val-role tracks is a user error.

Every epoch ends with an atomic checkpoint (``out/checkpoint.pt``: model, projector, optimiser, scheduler,
grad scaler, RNG states, epoch, best loss and weights, history); a run started again with the same ``out``
resumes there and ends with bit-identical weights to an uninterrupted run. ``out/history.csv`` holds the
loss curves, drawn in ``out/loss.svg``. The result is a weights folder written
into ``out`` itself (``config.json``, ``model.safetensors``, ``README.md``), loadable with ``--model out``.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from singerbench.errors import UserError
from singerbench.figures import loss_curves_svg
from singerbench.io import atomic_write, atomic_write_text
from singerbench.losses import nt_xent
from singerbench.manifest import Manifest, Track
from singerbench.progress import Progress

TRAIN_INPUTS = ("mixture", "vocals", "hybrid")
RECIPE = "singer-contrastive/2"
CHECKPOINT = "checkpoint.pt"
HISTORY = "history.csv"
PLOT = "loss.svg"
_PLUGINS = {"mixture": "MixtureEmbedder", "vocals": "VocalEmbedder", "hybrid": "HybridEmbedder"}
#: fields that may change between a run and its resumption (they do not change what an epoch computes).
_RESUMABLE_CHANGES = {"max_epochs", "audio_cache_tracks"}


@dataclass
class TrainConfig:
    """Every hyperparameter of the recipe; all of them are recorded in the weights' ``config.json``.

    Defaults are the reference's recipe with the AST-small encoder (docs/training.md pins each to its file);
    ``max_epochs`` is singerbench's safety cap. :meth:`tiny` is the named CPU-sized configuration.
    """

    # encoder (ASTEncoder constructor arguments)
    depth: int = 12
    width: int = 384
    heads: int = 6
    mlp_ratio: float = 4.0
    embedding_dim: int = 2048
    n_mels: int = 128
    # projector (training only)
    projector_hidden: int = 1024
    projector_dim: int = 2048
    # contrastive recipe
    batch_size: int = 128
    temperature: float = 0.2
    lr: float = 1e-4
    adam_eps: float = 1e-9
    lr_factor: float = 0.5
    lr_patience: int = 25
    lr_min: float = 1e-7  # the reference's min_lr = lr * 0.001
    scheduler_eps: float = 1e-9
    stop_patience: int = 100
    train_iterations: int = 32
    max_epochs: int = 1000
    hybrid_vocal_probability: float = 0.5
    seed: int = 0
    amp: bool = True  # mixed precision on CUDA; ignored on CPU
    audio_cache_tracks: int = 256  # decoded tracks kept in memory (LRU); 0 keeps all

    @classmethod
    def tiny(cls, **overrides: Any) -> TrainConfig:
        """A CPU-sized configuration for tests and smoke runs on the tiny generated corpus (minutes on CPU)."""
        base: dict[str, Any] = dict(
            depth=2,
            width=64,
            heads=2,
            embedding_dim=128,
            projector_hidden=128,
            projector_dim=128,
            batch_size=8,
            train_iterations=4,
            max_epochs=3,
            lr_patience=2,
            stop_patience=4,
            lr=3e-4,
        )
        base.update(overrides)
        return cls(**base)

    @classmethod
    def parse_overrides(cls, pairs: Sequence[str]) -> dict[str, Any]:
        """``["stop_patience=20", "lr=3e-4"]`` → typed overrides; every field of the recipe can be set."""
        defaults = cls()
        names = [f.name for f in fields(cls)]
        out: dict[str, Any] = {}
        for pair in pairs:
            name, sep, text = pair.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in names:
                raise UserError(f"--set expects FIELD=VALUE with FIELD one of {', '.join(names)}; got {pair!r}")
            kind = type(getattr(defaults, name))
            try:
                if kind is bool:
                    if text.strip().lower() not in {"true", "false", "1", "0"}:
                        raise ValueError(text)
                    out[name] = text.strip().lower() in {"true", "1"}
                else:
                    out[name] = kind(text)
            except ValueError:
                raise UserError(f"--set {name}: expected a {kind.__name__}, got {text!r}") from None
        return out

    def encoder_kwargs(self) -> dict[str, Any]:
        return {
            "depth": self.depth,
            "width": self.width,
            "heads": self.heads,
            "mlp_ratio": self.mlp_ratio,
            "embedding_dim": self.embedding_dim,
            "n_mels": self.n_mels,
            "seed": self.seed,
        }

    def check(self) -> None:
        """Reject settings that cannot train, with one line naming the field."""
        positive = ("depth", "width", "heads", "embedding_dim", "projector_hidden", "projector_dim")
        positive += ("train_iterations", "max_epochs", "lr_patience", "stop_patience")
        for name in positive:
            if getattr(self, name) <= 0:
                raise UserError(f"TrainConfig.{name} must be positive, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise UserError(
                f"TrainConfig.batch_size must be at least 2 (NT-Xent needs negatives), got {self.batch_size}"
            )
        if self.width % self.heads:
            raise UserError(f"TrainConfig.width ({self.width}) must be divisible by heads ({self.heads})")
        if self.n_mels % 16:
            raise UserError(f"TrainConfig.n_mels must be a multiple of 16 (the AST patch), got {self.n_mels}")
        if not (self.temperature > 0 and self.lr > 0 and 0 < self.lr_factor < 1):
            raise UserError("TrainConfig: temperature and lr must be positive and 0 < lr_factor < 1")
        if not (self.adam_eps > 0 and self.lr_min >= 0 and self.scheduler_eps >= 0):
            raise UserError("TrainConfig: adam_eps must be positive, lr_min and scheduler_eps not negative")
        if not 0 <= self.hybrid_vocal_probability <= 1:
            raise UserError("TrainConfig.hybrid_vocal_probability must lie in [0, 1]")


# --- pairs ---------------------------------------------------------------------------------------------------

Side = tuple[str, float, str]  # (track id, offset in seconds, "vocals" | "mixture")
Pair = tuple[Side, Side]


def _side_kinds(input_kind: str, rng: np.random.Generator, p_vocal: float) -> tuple[str, str]:
    if input_kind == "hybrid":
        draws = rng.random(2)
        return tuple("vocals" if d < p_vocal else "mixture" for d in draws)  # type: ignore[return-value]
    return input_kind, input_kind


class PairSampler:
    """Draws positive pairs from two different songs of one singer; its state lives in one numpy Generator."""

    def __init__(self, manifest: Manifest, input_kind: str, config: TrainConfig) -> None:
        self.input_kind = input_kind
        self.config = config
        usable = [t for t in manifest.tracks if t.vocal_offsets and len(t.singers) == 1]
        self.tracks = {t.id: t for t in usable}
        self.train_by_singer: dict[str, list[Track]] = {}
        self.val_by_singer: dict[str, list[Track]] = {}
        for t in usable:
            if t.role == "train":
                self.train_by_singer.setdefault(t.singers[0], []).append(t)
            elif t.role == "val":
                self.val_by_singer.setdefault(t.singers[0], []).append(t)
        order = {s: i for i, s in enumerate(manifest.singers)}
        self.train_singers = sorted(
            (s for s, ts in self.train_by_singer.items() if len(ts) >= 2), key=order.get
        )
        if not self.train_singers:
            raise UserError(
                f"dataset {manifest.name!r} has no singer with two training songs (with vocal segments); "
                "the contrastive recipe pairs two different songs of one singer"
            )
        self.val_singers = sorted(
            (s for s, ts in self.val_by_singer.items() if self.train_by_singer.get(s) or len(ts) >= 2),
            key=order.get,
        )
        if not self.val_singers:
            raise UserError(
                f"dataset {manifest.name!r} has no val-role song whose singer also has another song; "
                "validation pairs a val song with another song of the same singer"
            )
        self.rng = np.random.default_rng([config.seed, 1])

    def _singers(self, pool: Sequence[str], b: int, rng: np.random.Generator) -> list[str]:
        """B singers, distinct when the pool allows, otherwise each as evenly as possible."""
        out: list[str] = []
        while len(out) < b:
            perm = rng.permutation(len(pool))
            out.extend(pool[i] for i in perm[: b - len(out)])
        return out

    def _side(self, track: Track, kind: str, rng: np.random.Generator) -> Side:
        return track.id, float(track.vocal_offsets[int(rng.integers(len(track.vocal_offsets)))]), kind

    def train_batch(self) -> list[Pair]:
        rng, b = self.rng, self.config.batch_size
        pairs = []
        for singer in self._singers(self.train_singers, b, rng):
            songs = self.train_by_singer[singer]
            i, j = rng.choice(len(songs), size=2, replace=False)
            k1, k2 = _side_kinds(self.input_kind, rng, self.config.hybrid_vocal_probability)
            pairs.append((self._side(songs[i], k1, rng), self._side(songs[j], k2, rng)))
        return pairs

    def val_pairs(self) -> list[Pair]:
        """The fixed validation set, drawn from the seed alone: one pair per validation singer, in singer order.

        Two different val songs of the singer (the reference's rule); a singer with one val song pairs it with
        one of its training songs.
        """
        rng = np.random.default_rng([self.config.seed, 2])
        pairs = []
        for singer in self.val_singers:
            vals = self.val_by_singer[singer]
            if len(vals) >= 2:
                i, j = rng.choice(len(vals), size=2, replace=False)
                a, other = vals[i], vals[j]
            else:
                a, others = vals[0], self.train_by_singer[singer]
                other = others[int(rng.integers(len(others)))]
            k1, k2 = _side_kinds(self.input_kind, rng, self.config.hybrid_vocal_probability)
            pairs.append((self._side(a, k1, rng), self._side(other, k2, rng)))
        return pairs

    def val_batches(self) -> list[list[Pair]]:
        """:meth:`val_pairs` in batches of ``batch_size`` pairs; a last batch of one pair joins the one before."""
        pairs, b = self.val_pairs(), self.config.batch_size
        batches = [pairs[i : i + b] for i in range(0, len(pairs), b)]
        if len(batches) > 1 and len(batches[-1]) == 1:
            last = batches.pop()
            batches[-1] = batches[-1] + last
        if len(pairs) < 2:
            raise UserError(
                f"validation needs at least 2 singers with a val-role song (NT-Xent needs negatives); "
                f"found {len(pairs)}"
            )
        return batches


# --- audio ---------------------------------------------------------------------------------------------------


class PairAudio:
    """Turns pairs into ``(2B, 2, samples)`` tensors through SegmentSource, keeping decoded tracks in memory."""

    def __init__(
        self, tracks: dict[str, Track], sample_rate: int, channels: int, separator=None, cache: int = 0
    ):
        from singerbench.segments import SegmentSource

        self.tracks = tracks
        self.sources = {
            kind: SegmentSource(sample_rate, channels, kind, 6.0, separator=separator)
            for kind in ("mixture", "vocals")
        }
        self.cache_size = int(cache)
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    def _audio(self, track: Track, kind: str) -> np.ndarray:
        key = (kind, track.id)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        x = self.sources[kind].load_track(track)
        self._cache[key] = x
        if self.cache_size:
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return x

    def side(self, side: Side) -> np.ndarray:
        """One 6 s view, peak-normalised on its own window (a silent window stays zero), as the reference."""
        track_id, offset, kind = side
        track = self.tracks[track_id]
        x = self.sources[kind].cut(self._audio(track, kind), track, offset)
        peak = float(np.max(np.abs(x)))
        return x / np.float32(peak) if peak > 0 else x

    def batch(self, pairs: Sequence[Pair]) -> torch.Tensor:
        views = [self.side(a) for a, _ in pairs] + [self.side(b) for _, b in pairs]
        return torch.from_numpy(np.stack(views))


# --- training ------------------------------------------------------------------------------------------------


def _plugin_class(input_kind: str):
    from singerbench.baselines import ast_encoder

    return getattr(ast_encoder, _PLUGINS[input_kind])


def _build(input_kind: str, config: TrainConfig) -> tuple[torch.nn.Module, torch.nn.Module]:
    from singerbench.baselines.ast_encoder import ASTProjector

    plugin = _plugin_class(input_kind)(**config.encoder_kwargs())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed + 1)
        projector = ASTProjector(config.embedding_dim, config.projector_hidden, config.projector_dim)
    return plugin, projector


def _data_record(manifest: Manifest, sampler: PairSampler) -> dict[str, Any]:
    return {
        "name": manifest.name,
        "generated": bool(manifest.generated),
        "checksum": manifest.checksum(),
        "singers": len(sampler.train_singers),
        "train_tracks": sum(len(sampler.train_by_singer[s]) for s in sampler.train_singers),
        "val_tracks": sum(len(v) for v in sampler.val_by_singer.values()),
    }


def _write_history(out: Path, history: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    cols = ["epoch", "train_loss", "val_loss", "lr", "seconds"]
    writer = csv.DictWriter(buf, fieldnames=cols)
    writer.writeheader()
    for row in history:
        writer.writerow({k: row[k] for k in cols})
    atomic_write_text(out / HISTORY, buf.getvalue())
    epochs = [r["epoch"] for r in history]
    curves = {"train": [r["train_loss"] for r in history], "validation": [r["val_loss"] for r in history]}
    atomic_write_text(out / PLOT, loss_curves_svg(epochs, curves, y_label="NT-Xent"))


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def _load_checkpoint(path: Path, input_kind: str, config: TrainConfig, checksum: str) -> dict[str, Any]:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(f"cannot read checkpoint {path} ({e}); delete it to start the run afresh") from None
    if ckpt.get("recipe") != RECIPE:
        raise UserError(f"{path} is not a {RECIPE} checkpoint; choose another output folder")
    old = {k: v for k, v in ckpt["config"].items() if k not in _RESUMABLE_CHANGES}
    new = {k: v for k, v in asdict(config).items() if k not in _RESUMABLE_CHANGES}
    if ckpt["input"] != input_kind or old != new or ckpt["data_checksum"] != checksum:
        diff = [k for k in new if old.get(k) != new[k]]
        what = (
            "input"
            if ckpt["input"] != input_kind
            else ("dataset" if ckpt["data_checksum"] != checksum else ", ".join(diff))
        )
        raise UserError(
            f"{path.parent} holds a checkpoint of a different run ({what} differ); "
            "choose another output folder or delete the checkpoint to start afresh"
        )
    return ckpt


def train(
    input: str,
    manifest: Manifest,
    out: Path,
    config: TrainConfig,
    device: str = "cpu",
    progress: bool = True,
    separator: Any = None,
) -> Path:
    """Train the ``input`` model (mixture, vocals or hybrid) on ``manifest``; returns the weights folder ``out``.

    Resumes from ``out/checkpoint.pt`` when it exists (same input, data and config, ``max_epochs`` aside).
    ``separator`` supplies vocal stems for tracks without one (vocals and hybrid inputs).
    """
    from singerbench.pretrained import save_pretrained

    if input not in TRAIN_INPUTS:
        raise UserError(f"training input {input!r} is not one of {', '.join(TRAIN_INPUTS)}")
    config.check()
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UserError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r} asked, but this torch build sees no CUDA GPU; use --device cpu")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    sampler = PairSampler(manifest, input, config)
    data = _data_record(manifest, sampler)
    plugin, projector = _build(input, config)
    audio = PairAudio(
        sampler.tracks, plugin.sample_rate, plugin.channels, separator, config.audio_cache_tracks
    )
    plugin.to(dev)
    projector.to(dev)
    params = list(plugin.parameters()) + list(projector.parameters())
    optimiser = torch.optim.Adam(params, lr=config.lr, betas=(0.9, 0.999), eps=config.adam_eps)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimiser, mode="min", factor=config.lr_factor, patience=config.lr_patience, min_lr=config.lr_min,
        eps=config.scheduler_eps,
    )
    use_amp = bool(config.amp and dev.type == "cuda")
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    epoch, best_loss, best_epoch, since_best = 0, math.inf, 0, 0
    history: list[dict[str, Any]] = []
    best_state = _cpu_state(plugin)
    stopped = ""
    ckpt_path = out / CHECKPOINT
    if ckpt_path.is_file():
        ckpt = _load_checkpoint(ckpt_path, input, config, data["checksum"])
        plugin.load_state_dict(ckpt["model"])
        projector.load_state_dict(ckpt["projector"])
        optimiser.load_state_dict(ckpt["optimiser"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        sampler.rng.bit_generator.state = ckpt["rng"]["numpy"]
        torch.set_rng_state(ckpt["rng"]["torch"])
        if dev.type == "cuda" and "cuda" in ckpt["rng"]:
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"], dev)
        epoch, best_loss, best_epoch = ckpt["epoch"], ckpt["best_loss"], ckpt["best_epoch"]
        since_best, history, best_state = ckpt["since_best"], ckpt["history"], ckpt["best_state"]
        stopped = ckpt["stopped"] if ckpt["stopped"] == "plateau" else ""

    val_batches = sampler.val_batches()

    def loss_of(pairs: Sequence[Pair]) -> torch.Tensor:
        x = audio.batch(pairs).to(dev, non_blocking=True)
        b = len(pairs)
        with torch.autocast(dev.type, dtype=amp_dtype, enabled=use_amp):  # anchors, then positives (reference)
            z1 = projector(plugin.encoder(x[:b]))
            z2 = projector(plugin.encoder(x[b:]))
        return nt_xent(z1.float(), z2.float(), config.temperature)

    bar = Progress(f"train {input}", config.max_epochs, "epoch", bar=progress, initial=min(epoch, config.max_epochs))
    while not stopped and epoch < config.max_epochs:
        t0 = time.perf_counter()
        plugin.train()
        projector.train()
        train_losses = []
        for _ in range(config.train_iterations):
            loss = loss_of(sampler.train_batch())
            optimiser.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
            train_losses.append(float(loss.detach()))
        plugin.eval()
        projector.eval()
        with torch.no_grad():
            val_loss = float(np.mean([float(loss_of(pairs)) for pairs in val_batches]))
        epoch += 1
        lr = optimiser.param_groups[0]["lr"]
        scheduler.step(val_loss)
        if val_loss < best_loss:
            best_loss, best_epoch, since_best = val_loss, epoch, 0
            best_state = _cpu_state(plugin)
        else:
            since_best += 1
        if since_best >= config.stop_patience:
            stopped = "plateau"
        history.append(
            {
                "epoch": epoch,
                "train_loss": float(np.mean(train_losses)),
                "val_loss": val_loss,
                "lr": lr,
                "seconds": round(time.perf_counter() - t0, 3),
            }
        )
        state = {
            "recipe": RECIPE,
            "input": input,
            "config": asdict(config),
            "data_checksum": data["checksum"],
            "model": _cpu_state(plugin),
            "projector": _cpu_state(projector),
            "optimiser": optimiser.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": {"numpy": sampler.rng.bit_generator.state, "torch": torch.get_rng_state()}
            | ({"cuda": torch.cuda.get_rng_state(dev)} if dev.type == "cuda" else {}),
            "epoch": epoch,
            "best_loss": best_loss,
            "best_epoch": best_epoch,
            "since_best": since_best,
            "best_state": best_state,
            "history": history,
            "stopped": stopped or ("max_epochs" if epoch >= config.max_epochs else ""),
        }
        atomic_write(ckpt_path, lambda tmp, state=state: torch.save(state, tmp))
        _write_history(out, history)
        bar.update(1)
        bar.set_postfix(train=f"{history[-1]['train_loss']:.3f}", val=f"{val_loss:.3f}", lr=f"{lr:.1e}")
    bar.close()
    if not history:
        raise UserError(
            f"nothing to train: max_epochs is {config.max_epochs} and the checkpoint is at {epoch}"
        )

    final = _plugin_class(input)(**config.encoder_kwargs())
    final.load_state_dict(best_state)
    record = {
        "recipe": RECIPE,
        "input": input,
        **asdict(config),
        "epochs": epoch,
        "best_epoch": best_epoch,
        "best_val_loss": best_loss,
        "stopped": stopped or "max_epochs",
        "validation": "fixed pairs, one per validation singer: two of its val-role songs, or its val song with "
        "one of its training songs",
        "device": dev.type,
        "mixed_precision": str(amp_dtype).removeprefix("torch.") if use_amp else "off",
        "torch": torch.__version__,
        "data": data,
    }
    return save_pretrained(final, out, training=record)


def training_fields() -> list[str]:
    """Names of every TrainConfig field (for the CLI's options)."""
    return [f.name for f in fields(TrainConfig)]
