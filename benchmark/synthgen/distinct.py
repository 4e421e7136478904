"""Are the generated singers distinct people? The ``speaker`` plugin (a GE2E speaker encoder, independent of the
generator) listens to sung material and names its singer by the nearest enrolled centroid among all voices.

Two measures, one per question (docs/synth.md):
- **corpus** (``--corpus large [--confound 0]``): on a rendered corpus's vocal stems, through the project's own
  stations (the embedding store is shared, so a second pass embeds nothing). A singer is enrolled by its
  training songs; each held-out real song (validation, test) is named by its mean segment embedding.
- **phrase** (no ``--corpus``): each person sings a few new 6 s phrases, each in its own style and melody, and
  each phrase is named leave-one-out among all voices: the strict per-phrase figure.

``python -m singerbench.synthgen.distinct [--corpus PRESET]`` prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from singerbench.manifest import Manifest
from singerbench.store import EmbeddingTable
from singerbench.synthgen.engines import ENGINES, sing
from singerbench.synthgen.melody import phrase, song_form
from singerbench.synthgen.styles import STYLES
from singerbench.synthgen.voices import PERSONS, syllables

log = logging.getLogger("singerbench.synthgen")
SR = 16000
#: the roles enrolled, and the roles of the real songs held out and named
ENROL_ROLES = ("train",)
HELD_OUT_ROLES = ("val", "test")


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def corpus_identification(manifest: Manifest, table: EmbeddingTable) -> dict:
    """Name each held-out real song's singer by the nearest (cosine) enrolled centroid among all singers.

    A singer's centroid is the unit-normalised mean of its training songs' segment embeddings; a held-out song
    is its mean segment embedding. Returns the share of songs named right, the share of voices with every
    held-out song named right, and each confusion with whether the named voice is of the same engine.
    """
    enrolled: dict[str, list[np.ndarray]] = {}
    engine: dict[str, str | None] = {}
    for role in ENROL_ROLES:
        for t in manifest.by_role(role):
            if len(t.singers) == 1:
                enrolled.setdefault(t.singers[0], []).append(table.for_track(t.id))
                engine[t.singers[0]] = (t.extra.get("engines") or [None])[0]
    voices = [s for s in manifest.singers if s in enrolled]
    centroids = np.stack([_unit(np.concatenate(enrolled[s]).mean(axis=0)) for s in voices])
    held = [t for role in HELD_OUT_ROLES for t in manifest.by_role(role)
            if len(t.singers) == 1 and t.singers[0] in enrolled]
    confusions, missed = [], set()
    for t in held:
        named = voices[int(np.argmax(centroids @ table.for_track(t.id).mean(axis=0)))]
        if named != t.singers[0]:
            missed.add(t.singers[0])
            confusions.append({"song": t.id, "singer": t.singers[0], "named": named,
                               "same_engine": engine[named] is not None and engine[named] == engine[t.singers[0]]})
    sung = {t.singers[0] for t in held}
    return {
        "voices": len(voices),
        "held_out_songs": len(held),
        "identified": round(1 - len(confusions) / len(held), 4) if held else None,
        "voices_all_right": round(1 - len(missed) / len(sung), 4) if sung else None,
        "chance": round(1 / len(voices), 4),
        "confusions_same_engine": sum(c["same_engine"] for c in confusions),
        "confusions": confusions,
    }


def corpus_embeddings(preset: str, seed: int = 0, confound: float | None = None, model: str = "speaker",
                      cache_dir: Path | None = None, batch_size: int = 16, device: str = "auto",
                      progress: bool = True) -> tuple[Manifest, EmbeddingTable, dict]:
    """The real songs' segment embeddings of a rendered ``synth`` corpus, through the shared embedding store
    (computed once); a UserError naming the ``singerbench synth`` command when the corpus is not rendered."""
    from singerbench.datasets import load_dataset
    from singerbench.paths import station_dir
    from singerbench.registry import resolve_model
    from singerbench.run import pick_device
    from singerbench.segments import SegmentSource
    from singerbench.store import EmbeddingStore

    embedder = resolve_model(model).embedder
    manifest = load_dataset("synth", {"cache_dir": cache_dir, "progress": progress}, preset=preset, seed=seed,
                            confound=confound, render=False)
    store = EmbeddingStore(station_dir("embeddings", cache_dir))
    tracks = [t for role in ENROL_ROLES + HELD_OUT_ROLES for t in manifest.by_role(role)]
    started = time.perf_counter()
    table = store.embed(embedder, manifest, SegmentSource.for_embedder(embedder), tracks=tracks,
                        batch_size=batch_size, device=pick_device(device), progress=progress)
    counters = {"segments": len(table), "computed": store.computed, "reused": store.reused,
                "embed_seconds": round(time.perf_counter() - started, 1)}
    return manifest, table, counters


def sung_phrases(person: str, n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` sung lines of about 6 s by ``person``'s primary voice, each in its own style and melody."""
    voice = PERSONS[person]
    low, high = voice.range
    lines = []
    for k in range(n):
        rng = np.random.default_rng([seed, k, sum(map(ord, person))])
        form = song_form(STYLES[k % len(STYLES)], 12.0, rng)
        notes = [note for bar in form.phrase_starts(12.0)[:2]
                 for note in phrase(form, bar, low, high, syllables(voice.language), rng)]
        t0 = notes[0].start
        notes = [type(note)(note.start - t0, note.dur, note.pitch, note.text) for note in notes]
        lines.append(sing(voice, notes, SR))
    return lines


def identification_rate(persons: list[str], n: int = 3, seed: int = 0) -> tuple[float, dict[str, str]]:
    """Leave-one-out nearest-centroid identification among ``persons``; (rate, {phrase: wrongly named})."""
    from singerbench.baselines.speaker import SpeakerEmbedder

    model = SpeakerEmbedder()
    emb: dict[str, torch.Tensor] = {}
    started = time.monotonic()
    for i, p in enumerate(persons):
        lines = sung_phrases(p, n, seed)
        m = max(len(x) for x in lines)
        batch = torch.tensor(np.stack([np.pad(x, (0, m - len(x))) for x in lines]), dtype=torch.float32)[:, None]
        with torch.no_grad():
            emb[p] = model.embed(batch)
        if (i + 1) % 10 == 0:
            log.info("distinctness: %d/%d voices sung and embedded (%.0f s)", i + 1, len(persons),
                     time.monotonic() - started)
    def unit_mean(e: torch.Tensor) -> torch.Tensor:
        c = e.mean(dim=0)
        return c / c.norm()

    centroids = torch.stack([unit_mean(emb[q]) for q in persons])  # only a phrase's own singer changes
    right, wrong = 0, {}
    for i, p in enumerate(persons):
        for k in range(n):
            cents = centroids.clone()
            cents[i] = unit_mean(torch.cat([emb[p][:k], emb[p][k + 1 :]]))  # leave the phrase out
            scores = cents @ emb[p][k]
            named = persons[int(scores.argmax())]
            if named == p:
                right += 1
            else:
                wrong[f"{p}#{k}"] = named
    return right / (n * len(persons)), wrong


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", metavar="PRESET", help="measure on this rendered synth corpus (e.g. large) "
                    "instead of singing new phrases")
    ap.add_argument("--confound", type=float, help="the corpus's confound dial (default: the preset's)")
    ap.add_argument("--model", default="speaker", help="the plugin that listens (corpus measure)")
    ap.add_argument("--cache-dir", type=Path, help="the singerbench cache root (default: the user cache)")
    ap.add_argument("--phrases", type=int, default=3, help="sung phrases per person (phrase measure)")
    ap.add_argument("--seed", type=int, default=0, help="the corpus seed, or the phrases' seed")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.corpus is None:
        persons = [p for p, v in PERSONS.items() if ENGINES[v.engine].installed(v)]
        rate, wrong = identification_rate(persons, args.phrases, args.seed)
        print(json.dumps({"persons": len(persons), "phrases": args.phrases, "identified": round(rate, 4),
                          "confusions": wrong}, indent=1))
        return 0
    from singerbench.errors import UserError
    from singerbench.synthgen import resolve_preset

    try:
        confound = resolve_preset(args.corpus, args.confound).confound
        manifest, table, counters = corpus_embeddings(args.corpus, args.seed, args.confound, args.model,
                                                      args.cache_dir, progress=sys.stderr.isatty())
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    figures = corpus_identification(manifest, table)
    print(json.dumps({"corpus": args.corpus, "seed": args.seed, "confound": confound, "model": args.model,
                      **counters, **figures}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
