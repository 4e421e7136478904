"""The model registry: turns a ``--model`` value into a frozen Embedder, whatever form the user gave it.

Forms, tried in this order:

- ``hf://owner/repo[@revision]``: a weights folder on the Hugging Face Hub (pulled and pinned by ``hub.py``);
- a local folder holding ``config.json`` and ``model.safetensors`` (a trained or converted model);
- ``path/to/file.py:Class``: a plugin class in a file anywhere on disk;
- ``package.module:Class``: a plugin class in an importable module;
- a registered name: plugins registered in-process with :func:`register_model`, and plugins installed by any
  package through the entry-point group ``singerbench.models`` (the built-in baselines register exactly so).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from singerbench.compat import torchaudio_fix
from singerbench.embedder import INPUT_KINDS, Embedder
from singerbench.errors import UserError

ENTRY_POINT_GROUP = "singerbench.models"


@dataclass(frozen=True)
class ModelEntry:
    """A registered plugin: its name, how to load its class, and where the registration came from."""

    name: str
    load_class: Callable[[], type[Embedder]]
    source: str

    def plugin_class(self) -> type[Embedder]:
        try:
            cls = self.load_class()
        except (ImportError, OSError) as e:
            raise import_failure(f"model {self.name!r} ({self.source})", e) from None
        return _check_class(cls, self.name)


@dataclass
class ResolvedModel:
    """An instantiated plugin plus what the results need to say about where it came from."""

    embedder: Embedder
    spec: str
    source: str


_DECORATED: dict[str, ModelEntry] = {}


def register_model(name: str | None = None) -> Callable[[type[Embedder]], type[Embedder]]:
    """Class decorator registering a plugin in-process: ``@register_model("mine") class Mine(Embedder): ...``."""

    def deco(cls: type[Embedder]) -> type[Embedder]:
        key = name or cls.name or cls.__name__.lower()
        if not cls.name:
            cls.name = key
        _DECORATED[key] = ModelEntry(key, lambda: cls, f"registered in {cls.__module__}")
        return cls

    return deco


def registered_models() -> dict[str, ModelEntry]:
    """Every registered plugin: entry points of installed packages, then in-process registrations."""
    models: dict[str, ModelEntry] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "unknown package"
        source = "built-in" if dist == "singerbench" else f"entry point of {dist}"
        models[ep.name] = ModelEntry(ep.name, ep.load, source)
    models.update(_DECORATED)
    return models


def registered_paths() -> set[str]:
    """``module:Class`` of every registered plugin (entry-point values, decorated classes), importing none."""
    paths = {ep.value.replace(" ", "") for ep in entry_points(group=ENTRY_POINT_GROUP)}
    for entry in _DECORATED.values():
        cls = entry.load_class()
        paths.add(f"{cls.__module__}:{cls.__qualname__}")
    return paths


def import_failure(label: str, e: BaseException) -> UserError:
    """One line for a plugin that cannot be imported; the exact fix when torchaudio is the cause."""
    fix = torchaudio_fix(e)
    if fix:
        return UserError(f"{label} cannot be imported: {fix}")
    return UserError(f"{label} cannot be imported: {type(e).__name__}: {e}")


def _check_class(obj: object, label: str) -> type[Embedder]:
    if not (isinstance(obj, type) and issubclass(obj, Embedder)):
        raise UserError(f"{label} is not a subclass of singerbench.embedder.Embedder")
    return obj


def _class_from_file(path: Path, class_name: str) -> type[Embedder]:
    if not path.is_file():
        raise UserError(f"plugin file {path} does not exist")
    # A module name derived from the path keeps two plugin files of the same name apart.
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
    mod_name = f"singerbench_plugin_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"cannot import plugin file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the user's file failed to import: say so in one line
        del sys.modules[mod_name]
        raise import_failure(f"plugin file {path}", e) from None
    if not hasattr(module, class_name):
        raise UserError(f"plugin file {path} has no class {class_name!r}")
    return _check_class(getattr(module, class_name), f"{path}:{class_name}")


def _class_from_module(module_name: str, class_name: str) -> type[Embedder]:
    try:
        module = importlib.import_module(module_name)
    except (ImportError, OSError) as e:
        raise import_failure(f"module {module_name!r}", e) from None
    if not hasattr(module, class_name):
        raise UserError(f"module {module_name!r} has no class {class_name!r}")
    return _check_class(getattr(module, class_name), f"{module_name}:{class_name}")


def plugin_class(spec: str) -> tuple[type[Embedder], str]:
    """The plugin class named by a file, module or registry spec, and where it came from."""
    if ":" in spec:
        target, class_name = spec.rsplit(":", 1)
        if target.endswith(".py") or "/" in target or Path(target).is_file():
            return _class_from_file(Path(target).expanduser(), class_name), f"file {target}"
        return _class_from_module(target, class_name), f"module {target}"
    models = registered_models()
    if spec not in models:
        import difflib

        known = ", ".join(sorted(models)) or "none"
        close = difflib.get_close_matches(spec, list(models), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(
            f"unknown model {spec!r}; {hint}registered models: {known}. "
            "Other forms: path/to/file.py:Class, package.module:Class, a weights folder, hf://owner/repo"
        )
    entry = models[spec]
    cls = entry.plugin_class()
    if not cls.name:
        cls.name = spec
    return cls, entry.source


def instantiate(cls: type[Embedder], label: str) -> Embedder:
    """Build a plugin with no arguments, turning a failing constructor into one clear line."""
    try:
        embedder = cls()
    except UserError:
        raise
    except Exception as e:
        fix = torchaudio_fix(e)
        if fix:
            raise UserError(f"model {label!r} could not be constructed: {fix}") from None
        raise UserError(f"model {label!r} could not be constructed: {type(e).__name__}: {e}") from None
    return embedder


def resolve_model(spec: str) -> ResolvedModel:
    """Turn any ``--model`` form into a frozen (eval-mode) plugin instance."""
    if spec.startswith("hf://"):
        from singerbench.hub import resolve_hub_model

        embedder, source = resolve_hub_model(spec), "hub"
    elif Path(spec).expanduser().is_dir():
        from singerbench.hub import resolve_local_model

        embedder, source = resolve_local_model(Path(spec).expanduser()), f"folder {spec}"
    else:
        cls, source = plugin_class(spec)
        embedder = instantiate(cls, spec)
    check_declaration(embedder)
    embedder.eval()
    for p in embedder.parameters():
        p.requires_grad_(False)
    return ResolvedModel(embedder, spec, source)


def check_declaration(embedder: Embedder) -> None:
    """Reject a plugin whose declared audio or output contract cannot be served, before any work is done."""
    label = embedder.plugin_name()
    problems = []
    if not isinstance(embedder.sample_rate, int) or embedder.sample_rate <= 0:
        problems.append(f"sample_rate must be a positive int, got {embedder.sample_rate!r}")
    if embedder.channels not in (1, 2):
        problems.append(f"channels must be 1 or 2, got {embedder.channels!r}")
    if embedder.input_kind not in INPUT_KINDS:
        problems.append(f"input_kind must be one of {INPUT_KINDS}, got {embedder.input_kind!r}")
    if not isinstance(embedder.embedding_dim, int) or embedder.embedding_dim <= 0:
        problems.append(f"embedding_dim must be a positive int, got {embedder.embedding_dim!r}")
    if not (isinstance(embedder.segment_seconds, int | float) and embedder.segment_seconds > 0):
        problems.append(f"segment_seconds must be positive, got {embedder.segment_seconds!r}")
    if problems:
        raise UserError(f"model {label!r} declares an invalid contract: " + "; ".join(problems))
