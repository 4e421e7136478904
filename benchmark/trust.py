"""Who may allow code to run from data: the user, on the command line or in the environment, never a file.

Three things can run code if they are allowed to, and each is off by default:

- ``pickle``: unpickling a checkpoint that holds Python objects besides tensors (CLMR Lightning files);
- ``separator``: a Demucs separator that is not in the table of known models, or whose weights name a class
  outside the known Demucs classes, or a local ``.th`` checkpoint that needs full unpickling;
- ``plugin``: a weights folder (local or ``hf://``) whose ``config.json`` names a plugin class that is not
  registered (an entry point or ``register_model``): importing its module runs that module's code.

They are granted by ``SINGERBENCH_TRUST`` (comma-separated kinds, or ``all``), by the command-line options
``--trust-separator`` / ``--trust-plugin`` / ``--trust-checkpoints`` (which call :func:`grant`), or, for
``pickle`` only, by the older ``SINGERBENCH_TRUST_CHECKPOINTS=1``. A ``config.json``, a bag file or a
safetensors header asking for trust is ignored with a warning.
"""

from __future__ import annotations

import os
import warnings

TRUST_ENV = "SINGERBENCH_TRUST"
LEGACY_PICKLE_ENV = "SINGERBENCH_TRUST_CHECKPOINTS"
KINDS = ("pickle", "separator", "plugin")
#: the command-line option that grants each kind
OPTIONS = {"pickle": "--trust-checkpoints", "separator": "--trust-separator", "plugin": "--trust-plugin"}

_granted: set[str] = set()


def _check(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown trust kind {kind!r}; one of {KINDS}")


def grant(kind: str) -> None:
    """Allow ``kind`` for the rest of this process (the command line calls this for its trust options)."""
    _check(kind)
    _granted.add(kind)


def revoke_all() -> None:
    """Forget every grant made by :func:`grant` (tests, or a long-lived process between commands)."""
    _granted.clear()


def env_kinds() -> set[str]:
    """The kinds ``SINGERBENCH_TRUST`` grants now (read at call time, so a test may set it)."""
    words = {w.strip().lower() for w in os.environ.get(TRUST_ENV, "").split(",") if w.strip()}
    if "all" in words:
        return set(KINDS)
    kinds = words & set(KINDS)
    if os.environ.get(LEGACY_PICKLE_ENV) == "1":
        kinds.add("pickle")
    return kinds


def trusted(kind: str) -> bool:
    """Whether the user allowed ``kind`` (a grant in this process or the environment)."""
    _check(kind)
    return kind in _granted or kind in env_kinds()


def how_to_trust(kind: str) -> str:
    """The words that tell a user how to opt in, for an error message."""
    _check(kind)
    return f"if you trust its source, pass {OPTIONS[kind]} or set {TRUST_ENV}={kind}"


def ignore_file_trust(where: str, value: object) -> None:
    """Warn that a file asked for trust (``"trusted": ...``) and that the request is ignored."""
    warnings.warn(
        f"{where} asks for trust ({value!r}); ignored: only the command line or {TRUST_ENV} can grant it",
        stacklevel=3,
    )
