"""Are the generated singers distinct people? Each person's primary voice sings a few generated phrases; the
``speaker`` plugin (a GE2E speaker encoder, independent of the generator) embeds them, and each phrase is
named by the nearest enrolled centroid among all voices (leave-one-out). ``python -m
singerbench.synthgen.distinct`` prints the identification rate; ``tests/test_synth_large.py`` asserts it."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

import numpy as np
import torch

from singerbench.synthgen.engines import ENGINES, sing
from singerbench.synthgen.melody import phrase, song_form
from singerbench.synthgen.styles import STYLES
from singerbench.synthgen.voices import PERSONS, syllables

log = logging.getLogger("singerbench.synthgen")
SR = 16000


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
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--phrases", type=int, default=3, help="sung phrases per person")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    persons = [p for p, v in PERSONS.items() if ENGINES[v.engine].installed(v)]
    rate, wrong = identification_rate(persons, args.phrases, args.seed)
    print(json.dumps({"persons": len(persons), "phrases": args.phrases, "identified": round(rate, 4),
                      "confusions": wrong}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
