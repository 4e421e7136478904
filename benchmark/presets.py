"""Protocol presets: every hyperparameter of the classifier-head protocol, named and versioned.

A preset is a frozen dataclass; the registry :data:`PRESETS` maps its name to it. ``paper`` reproduces the
reference implementation of Desblancs et al. (ISMIR 2024, ``deezer/real-cloned-singer-id``,
``evaluation/train.py``, ``evaluation/model.py``, ``evaluation/parameters.py``) exactly; every other preset is
an explicit, named deviation. Changing any number of a preset means a new ``version`` (results record it).
The table of presets is in ``docs/protocol.md``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from singerbench.errors import UserError

OPTIMIZERS = ("adam",)
"""Optimisers the protocol knows (the paper uses Adam; a new one is added with its own code path in protocol.py)."""


@dataclass(frozen=True)
class Preset:
    """Every hyperparameter of one protocol variant. Defaults are the paper's values."""

    name: str
    version: str
    description: str
    #: False for presets that are not comparable to the paper (e.g. ``quick``): the leaderboard says so.
    leaderboard: bool = True
    # --- head: Linear(D,h)-BN-ReLU-[Linear(h,h)-BN-ReLU]*(layers-1)-Linear(h,C) ---
    hidden_dim: int = 1024
    hidden_layers: int = 2
    batch_norm: bool = True
    #: L2-normalise the logits before the softmax/cross-entropy (the paper's ``F.normalize(x, dim=1)``).
    logit_norm: bool = True
    # --- optimiser (torch.optim.Adam, as in the paper) ---
    optimizer: str = "adam"
    lr: float = 0.01
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-9
    weight_decay: float = 0.0
    # --- training batches: class-balanced (singer, then track, then segment), drawn with replacement ---
    batch_size: int = 100
    steps_per_epoch: int = 32
    # --- validation: segments drawn once per run from each singer's validation track ---
    val_segments_per_singer: int = 4
    #: validation loss = mean over batches of this size of the batch-mean loss (the paper's DataLoader).
    val_batch_size: int = 100
    # --- ReduceLROnPlateau on the validation loss (mode "min", relative threshold) ---
    scheduler_factor: float = 0.1
    scheduler_patience: int = 10
    scheduler_threshold: float = 1e-4
    scheduler_min_lr: float = 1e-5
    scheduler_eps: float = 1e-9
    # --- stopping ---
    #: stop after this many epochs in a row without a strictly lower validation loss; restore the best head.
    early_stop_patience: int = 20
    #: safety cap on epochs; not in the paper. Large enough never to bind in practice; results record if it did.
    max_epochs: int = 1000
    # --- evaluation ---
    top_k: int = 5
    # --- class-count sweep of the paper: range(start, stop + 1, step), capped by the dataset's singers ---
    sweep_start: int = 100
    sweep_stop: int = 1000
    sweep_step: int = 100
    #: the steps of a dataset smaller than ``sweep_start`` (not in the paper, whose datasets have 100+ singers);
    #: all its singers are always the last step.
    small_sweep: tuple[int, ...] = (10, 25, 50)
    #: how this preset departs from the paper's code, one line each (empty for ``paper``).
    deviations: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"preset {self.name!r}: optimizer {self.optimizer!r} is not one of {OPTIMIZERS}")
        for field in ("hidden_dim", "hidden_layers", "batch_size", "steps_per_epoch", "val_segments_per_singer",
                      "val_batch_size", "early_stop_patience", "max_epochs", "top_k"):
            if getattr(self, field) < 1:
                raise UserError(f"preset {self.name!r}: {field} must be at least 1")

    def params(self) -> dict:
        """All hyperparameters as a JSON-ready dict (tuples become lists), for results files."""
        d = asdict(self)
        for k in ("name", "version", "description"):
            d.pop(k)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def sweep_counts(self, n_singers: int, n_required: int = 0) -> list[int]:
        """The paper's class-count sweep for a dataset with ``n_singers`` singers.

        Steps above ``n_singers`` or below ``n_required`` (the cloned targets that must be classes) are dropped.
        A dataset smaller than the first step gets the ``small_sweep`` steps that fit it, then all its singers;
        a dataset with no usable step gets one count: all its singers.
        """
        counts = [
            c for c in range(self.sweep_start, self.sweep_stop + 1, self.sweep_step) if n_required <= c <= n_singers
        ]
        if n_singers < self.sweep_start:
            counts = [c for c in self.small_sweep if max(2, n_required) <= c < n_singers] + [n_singers]
        return counts or [n_singers]


PAPER = Preset(
    name="paper",
    version="1",
    description="The paper's reference implementation, exactly (Desblancs et al., ISMIR 2024).",
)

PAPER_NOLOGITNORM = replace(
    PAPER,
    name="paper-nologitnorm",
    version="1",
    description="As `paper`, but plain logits go into the cross-entropy (no L2 normalisation).",
    logit_norm=False,
    deviations=("logits are not L2-normalised before the cross-entropy",),
)

QUICK = replace(
    PAPER,
    name="quick",
    version="1",
    description="Fast smoke-test variant for tests and `validate`; NOT for leaderboards.",
    leaderboard=False,
    steps_per_epoch=8,
    scheduler_patience=3,
    early_stop_patience=5,
    max_epochs=200,
    deviations=(
        "an epoch is 8 batches (paper: 32)",
        "ReduceLROnPlateau patience 3 (paper: 10)",
        "early stop after 5 epochs without improvement (paper: 20)",
        "max_epochs 200 (paper preset: 1000)",
    ),
)

PRESETS: dict[str, Preset] = {p.name: p for p in (PAPER, PAPER_NOLOGITNORM, QUICK)}
"""The registry: name -> preset."""


def get_preset(name: str) -> Preset:
    """The registered preset called ``name``; a clear UserError listing the known ones otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise UserError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}") from None
