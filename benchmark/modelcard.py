"""The model card (``README.md``) written beside every weights folder, so a pushed repo explains itself.

The card opens with the YAML front matter the Hugging Face Hub reads (``library_name``, ``tags``,
``license``), then states the architecture, the training data (and whether it was generated), the recipe,
and the leaderboard scores when the caller passes any. Everything in it comes from ``config.json``; nothing
is filled in by hand.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

#: licence of weights whose training section names none: the project's own licence.
DEFAULT_LICENSE = "mit"
BASE_TAGS = ("singerbench", "singer-identification", "audio", "embeddings")


def _flatten(scores: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in scores.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows.extend(_flatten(value, f"{name} / "))
        else:
            rows.append((name, value))
    return rows


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list | dict):
        return f"`{json.dumps(value)}`"
    return str(value)


def render_model_card(doc: Mapping[str, Any], scores: Mapping[str, Any] | None = None) -> str:
    """Markdown card for a weights folder whose ``config.json`` content is ``doc``."""
    training = dict(doc.get("training") or {})
    license_ = str(training.get("license", DEFAULT_LICENSE))
    tags = list(BASE_TAGS)
    recipe = training.get("recipe")
    if recipe:
        tags.append(str(recipe))
    input_kind = training.get("input")
    if input_kind:
        tags.append(f"input-{input_kind}")
    front = yaml.safe_dump(
        {"library_name": "singerbench", "license": license_, "tags": tags}, sort_keys=False
    ).strip()
    name = doc.get("name") or doc["plugin"].rsplit(":", 1)[-1]
    lines = [f"---\n{front}\n---", "", f"# {name}", ""]
    lines += [
        "Singer-identification embedding model for singerbench: a frozen plugin whose embeddings of "
        "6 s vocal segments are scored by small classifier heads.",
        "",
        "Load it with `singerbench run --model hf://OWNER/REPO` (or `--model path/to/this/folder`), or in Python:",
        "",
        "```python",
        "from singerbench.pretrained import load_pretrained",
        "model = load_pretrained('path/to/this/folder')",
        "```",
        "",
        "## Architecture",
        "",
        f"- plugin: `{doc['plugin']}`",
        f"- constructor arguments: `{json.dumps(doc.get('config', {}), sort_keys=True)}`",
    ]
    audio = doc.get("audio")
    if audio:
        lines.append(
            f"- input: {audio.get('input_kind')}, {audio.get('sample_rate')} Hz, {audio.get('channels')} "
            f"channel(s), {audio.get('segment_seconds')} s segments; output: {doc.get('embedding_dim')}-d"
        )
    lines += ["", "## Training data", ""]
    data = training.get("data")
    if not data:
        lines.append("Not recorded (the weights were not trained by `singerbench train`, or were converted).")
    else:
        generated = data.get("generated")
        kind = (
            "**generated** (synthetic singers rendered by singerbench; not real recordings)"
            if generated
            else "real recordings"
        )
        lines.append(f"- dataset: `{data.get('name')}`, {kind}")
        for key in ("singers", "train_tracks", "val_tracks", "checksum"):
            if key in data:
                lines.append(f"- {key.replace('_', ' ')}: {_fmt(data[key])}")
    lines += ["", "## Recipe", ""]
    recipe_rows = {k: v for k, v in training.items() if k not in ("data", "history", "license")}
    if not recipe_rows:
        lines.append("Not recorded.")
    else:
        lines += ["| setting | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in _flatten(recipe_rows)]
    if scores:
        lines += ["", "## Leaderboard scores", "", "| benchmark | score |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in _flatten(scores)]
    lines += [
        "",
        "## Licence",
        "",
        f"`{license_}`" + (" (the singerbench project's licence)." if "license" not in training else "."),
        "",
    ]
    return "\n".join(lines)
