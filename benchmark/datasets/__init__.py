"""Dataset adapters: one module per source, each turning its source into a :class:`~singerbench.manifest.Manifest`.

An adapter is registered with :func:`register_dataset`; the CLI looks it up by name (``synth``, ``fma``,
``mtg``, ``closed``, ``cloned``) or by the ``hf://`` prefix. Adapters take keyword options from the CLI and
ignore none silently: an option an adapter does not accept is a user error.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from singerbench.errors import UserError
from singerbench.manifest import Manifest


@dataclass(frozen=True)
class DatasetAdapter:
    """A named source of Manifests.

    ``load(**options) -> Manifest`` builds the dataset; ``status(**options) -> (ready, message)`` says, without
    heavy work, whether it can be loaded on this machine and what is missing; ``needs`` is one line for
    ``singerbench datasets``.
    """

    name: str
    description: str
    needs: str
    load: Callable[..., Manifest]
    status: Callable[..., tuple[bool, str]]

    def accepted_options(self) -> set[str]:
        return set(inspect.signature(self.load).parameters)


_ADAPTERS: dict[str, DatasetAdapter] = {}
# Modules that register adapters on import; listed here so `singerbench datasets` sees them all.
_ADAPTER_MODULES = ("synth", "fma", "mtg", "closed", "cloned", "hf")


def register_dataset(
    name: str, *, description: str, needs: str, status: Callable[..., tuple[bool, str]]
) -> Callable[[Callable[..., Manifest]], Callable[..., Manifest]]:
    """Decorator for an adapter's ``load`` function."""

    def deco(load: Callable[..., Manifest]) -> Callable[..., Manifest]:
        _ADAPTERS[name] = DatasetAdapter(name, description, needs, load, status)
        return load

    return deco


def _import_adapters() -> None:
    for mod in _ADAPTER_MODULES:
        try:
            importlib.import_module(f"singerbench.datasets.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"singerbench.datasets.{mod}":
                raise


def all_datasets() -> dict[str, DatasetAdapter]:
    _import_adapters()
    return dict(_ADAPTERS)


def get_dataset(spec: str) -> tuple[DatasetAdapter, dict]:
    """Resolve a ``--dataset`` value to its adapter plus options implied by the spec itself (hf://...)."""
    adapters = all_datasets()
    implied: dict = {}
    name = spec
    if spec.startswith("hf://"):
        name, implied = "hf", {"repo": spec[len("hf://") :]}
    if name not in adapters:
        known = ", ".join(sorted(adapters)) or "none"
        raise UserError(f"unknown dataset {spec!r}; known datasets: {known} (or hf://owner/name)")
    return adapters[name], implied


def load_dataset(spec: str, harness_options: dict | None = None, **options) -> Manifest:
    """Load ``spec`` with the user's options (each must be accepted by the adapter; None = not given).

    ``harness_options`` (cache dir, progress) are passed only to adapters that take them.
    """
    adapter, implied = get_dataset(spec)
    accepted = adapter.accepted_options()
    given = {k: v for k, v in options.items() if v is not None}
    extra = sorted(set(given) - accepted)
    if extra:
        opts = ", ".join("--" + o.replace("_", "-") for o in extra)
        raise UserError(f"dataset {adapter.name!r} does not take {opts}")
    given = {k: _typed(adapter, k, v) for k, v in given.items()}
    given.update({k: v for k, v in (harness_options or {}).items() if k in accepted and v is not None})
    return adapter.load(**implied, **given)


def _typed(adapter: DatasetAdapter, key: str, value: object) -> object:
    """A ``-D key=value`` string turned into the type of the option's default (int, float, bool); else as is."""
    default = inspect.signature(adapter.load).parameters[key].default
    if not isinstance(value, str) or default is None or default is inspect.Parameter.empty:
        return value
    kind = type(default)
    text = value.strip()
    try:
        if kind is bool:
            if text.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(text)
            return text.lower() in {"true", "1", "yes"}
        if kind in (int, float):
            return kind(text)
    except ValueError:
        what = {bool: "true or false", int: "an integer", float: "a number"}[kind]
        raise UserError(f"dataset option {key} expects {what}, got {value!r}") from None
    return value
