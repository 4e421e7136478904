"""The weights-folder format: how a trained or converted plugin is stored, published and loaded back.

A weights folder holds three files:

- ``config.json``: ``{"format": "singerbench-weights/1", "plugin": "package.module:Class", "config": {...},
  "name": ..., "embedding_dim": ..., "audio": {...}, "training": {...}}``. ``config`` is the plugin's
  constructor arguments (``Embedder.config()``), so ``Class(**config)`` rebuilds the architecture;
  ``training`` records the recipe, data and epochs (empty for converted weights).
- ``model.safetensors``: the plugin's ``state_dict()``, loaded strictly.
- ``README.md``: a model card generated from ``config.json`` (:mod:`singerbench.modelcard`).

The same folder is what ``singerbench push`` uploads and what ``hf://owner/repo`` downloads. Loading imports
the plugin class named in ``config.json`` from the installed packages; no code is ever downloaded.

Identity: a loaded plugin's ``weights_id()`` returns the given identity (``hf:owner/repo@commit`` for the
Hub) or ``sha256:`` plus the first 16 hex digits of ``model.safetensors``' hash for a local folder. The id
is stored on the instance as ``_weights_id``; a plugin class whose ``weights_id()`` does not return it gets
an instance-level override, so any plugin works, but plugins with weights should read ``self._weights_id``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from singerbench.embedder import Embedder
from singerbench.errors import UserError
from singerbench.io import atomic_write, atomic_write_text

WEIGHTS_FORMAT = "singerbench-weights/1"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"


def plugin_path(embedder: Embedder) -> str:
    """``module:Class`` of a plugin instance, the form ``config.json`` names it by."""
    cls = type(embedder)
    if "<" in cls.__qualname__ or cls.__module__ == "__main__":
        raise UserError(
            f"plugin class {cls.__qualname__} is not importable by name (defined in __main__ or a function); "
            "move it into a module to save its weights"
        )
    return f"{cls.__module__}:{cls.__qualname__}"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def local_weights_id(folder: Path) -> str:
    """Identity of a local weights folder: the hash of its weights file, so retrained weights never collide."""
    return "sha256:" + file_sha256(Path(folder) / WEIGHTS_FILE)[:16]


def _state_tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """State dict as contiguous CPU tensors; tied tensors are cloned so safetensors can store each key."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, value in module.state_dict().items():
        t = value.detach().cpu()
        ptr = t.untyped_storage().data_ptr() if t.numel() else -1
        if ptr in seen and ptr != -1:
            t = t.clone()
        seen.add(ptr)
        out[key] = t.contiguous()
    return out


def save_pretrained(
    embedder: Embedder,
    out_dir: Path,
    training: dict | None = None,
    scores: dict | None = None,
) -> Path:
    """Write ``embedder`` as a weights folder (config, weights, model card); returns the folder.

    ``training`` lands in ``config.json`` as-is (it must be JSON-serialisable); ``scores`` only go into the
    model card. Each file is written atomically; the weights go first, so a folder with a ``config.json``
    always has its weights.
    """
    from safetensors.torch import save_file

    from singerbench.modelcard import render_model_card

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} exists and is not a folder; choose another output folder")
    config = embedder.config()
    doc: dict[str, Any] = {
        "format": WEIGHTS_FORMAT,
        "plugin": plugin_path(embedder),
        "config": config,
        "name": embedder.plugin_name(),
        "embedding_dim": int(embedder.embedding_dim),
        "audio": embedder.audio_config(),
        "training": training or {},
    }
    try:
        text = json.dumps(doc, indent=1, sort_keys=False) + "\n"
    except TypeError as e:
        raise UserError(
            f"config() or training record of {doc['plugin']} is not JSON-serialisable: {e}"
        ) from None
    tensors = _state_tensors(embedder)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / WEIGHTS_FILE, lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}))
    atomic_write_text(out_dir / CONFIG_FILE, text)
    atomic_write_text(out_dir / CARD_FILE, render_model_card(doc, scores))
    return out_dir


def _import_plugin(spec: str) -> type[Embedder]:
    """The plugin class a config.json names; only registered (or already imported) classes without trust.

    Importing a module runs its code, so a config file must not pick any module of the installed packages:
    the class must be a registered plugin, or its module already imported, unless the user trusts plugins.
    """
    import sys

    from singerbench.registry import registered_paths  # read without importing any plugin
    from singerbench.trust import how_to_trust, trusted

    if not isinstance(spec, str) or ":" not in spec:
        raise UserError(f"config.json names plugin {spec!r}; expected 'package.module:Class'")
    module_name, class_name = spec.split(":", 1)
    if (
        spec not in registered_paths()
        and module_name not in sys.modules
        and not trusted("plugin")
    ):
        raise UserError(
            f"the weights name plugin {spec}, which is not a registered singerbench model; importing it would "
            f"run its module's code: {how_to_trust('plugin')}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise UserError(f"the weights need plugin {spec}, whose module cannot be imported: {e}") from None
    obj: Any = module
    for part in class_name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise UserError(f"the weights need plugin {spec}, but {module_name} has no {class_name}")
    if not (isinstance(obj, type) and issubclass(obj, Embedder)):
        raise UserError(f"the weights name {spec}, which is not a singerbench Embedder subclass")
    return obj


def _stored_weights_id(self: Embedder) -> str:
    return self._weights_id


def set_weights_id(embedder: Embedder, weights_id: str) -> None:
    """Give ``embedder`` the identity ``weights_id``, also when its class does not read ``_weights_id``."""
    embedder._weights_id = weights_id
    if embedder.weights_id() != weights_id:
        embedder.weights_id = types.MethodType(_stored_weights_id, embedder)  # type: ignore[method-assign]


def _locate(dir_or_files: Path | str | Sequence[Path | str] | Mapping[str, Path | str]) -> tuple[Path, Path]:
    """(config.json, model.safetensors) from a folder, a list of the two files, or a name→path mapping."""
    if isinstance(dir_or_files, Mapping):
        files = {str(k): Path(v) for k, v in dir_or_files.items()}
    elif isinstance(dir_or_files, str | Path):
        folder = Path(dir_or_files).expanduser()
        if not folder.is_dir():
            raise UserError(f"weights folder {folder} does not exist")
        files = {CONFIG_FILE: folder / CONFIG_FILE, WEIGHTS_FILE: folder / WEIGHTS_FILE}
    else:
        files = {Path(p).name: Path(p) for p in dir_or_files}
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if name not in files or not files[name].is_file():
            where = files.get(name, name)
            raise UserError(
                f"{where} is missing: a weights folder holds {CONFIG_FILE} and {WEIGHTS_FILE} "
                "(write one with `singerbench train` or `singerbench convert-clmr`)"
            )
    return files[CONFIG_FILE], files[WEIGHTS_FILE]


def read_config(path: Path) -> dict:
    """Parse and check a weights folder's ``config.json``."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{path} is not a readable JSON file: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != WEIGHTS_FORMAT:
        raise UserError(f"{path} is not a {WEIGHTS_FORMAT} config (missing or wrong 'format')")
    if not isinstance(doc.get("config", {}), dict):
        raise UserError(f"{path}: 'config' must be an object of constructor arguments")
    return doc


def load_pretrained(
    dir_or_files: Path | str | Sequence[Path | str] | Mapping[str, Path | str],
    weights_id: str | None = None,
) -> Embedder:
    """Rebuild the plugin named in ``config.json``, load its weights strictly, and stamp its identity.

    ``weights_id`` defaults to the hash of the weights file. The model is returned in eval mode.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    config_path, weights_path = _locate(dir_or_files)
    doc = read_config(config_path)
    cls = _import_plugin(doc.get("plugin"))
    kwargs = dict(doc.get("config", {}))
    for key in [k for k in kwargs if "trust" in k.lower()]:  # trust is the user's, never a file's
        from singerbench.trust import ignore_file_trust

        ignore_file_trust(f"{config_path} (config.{key})", kwargs.pop(key))
    try:
        embedder = cls(**kwargs)
    except UserError:
        raise
    except Exception as e:
        raise UserError(
            f"{doc['plugin']}(**config) failed for {config_path}: {type(e).__name__}: {e}"
        ) from None
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError) as e:
        raise UserError(f"{weights_path} is not a readable safetensors file: {e}") from None
    expected = set(embedder.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
        if unexpected:
            parts.append(
                f"unexpected keys {', '.join(unexpected[:5])}" + (" ..." if len(unexpected) > 5 else "")
            )
        raise UserError(f"{weights_path} does not fit {doc['plugin']}(**config): " + "; ".join(parts))
    try:
        embedder.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[-1].strip()
        raise UserError(f"{weights_path} does not fit {doc['plugin']}(**config): {first}") from None
    if doc.get("name"):
        embedder.name = doc["name"]
    set_weights_id(embedder, weights_id or "sha256:" + file_sha256(weights_path)[:16])
    embedder.eval()
    return embedder


def convert_clmr(ckpt: Path, out_dir: Path, trusted: bool = False, license: str = "apache-2.0") -> Path:
    """Turn a public CLMR checkpoint into a weights folder of the ``clmr`` plugin (``convert-clmr CKPT DIR``).

    The folder's ``config.json`` names no checkpoint path, so it loads anywhere (also from the Hub); the
    source file's hash is recorded. ``license`` defaults to that of the public CLMR release (Apache-2.0);
    pass the right one for other checkpoints.
    """
    from singerbench.baselines.clmr import CLMREmbedder, load_clmr_checkpoint

    ckpt = Path(ckpt)
    state = load_clmr_checkpoint(ckpt, trusted=trusted)
    model = CLMREmbedder(seed=0)
    model.encoder.load_state_dict(state)
    training = {
        "recipe": "clmr (converted)",
        "converted_from": ckpt.name,
        "source_sha256": file_sha256(ckpt),
        "license": license,
    }
    return save_pretrained(model, out_dir, training=training)
