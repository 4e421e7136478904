"""``make perf``: speed ratios measured in one run, on the tiny generated corpus.

These machines are noisy, so the benchmark reports ratios of timings taken side by side in one process, never
absolute budgets: an uncached vs a cached embedding pass (the store), a batched vs a one-by-one pass (the
plugin), and background-decoded vs synchronous batches (the SegmentSource).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from singerbench.datasets.synth import load
from singerbench.paths import station_dir
from singerbench.registry import resolve_model
from singerbench.segments import SegmentSource
from singerbench.store import EmbeddingStore


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def side_by_side(a: Callable[[], object], b: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Best of ``repeats`` timings of ``a`` and of ``b``, taken in turn (a, b, a, b, ...), so a burst of load
    on the machine slows both rather than only the variant that happened to be running."""
    best_a = best_b = float("inf")
    for _ in range(repeats):
        best_a = min(best_a, timed(a))
        best_b = min(best_b, timed(b))
    return best_a, best_b


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="speaker")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3, help="timings per variant; the best is kept")
    scale = parser.add_argument_group("--scale: the protocol on FMA-sized synthetic embeddings")
    scale.add_argument("--scale", action="store_true", help="run the protocol benchmark instead of the embedding one")
    scale.add_argument("--singers", type=int, default=1019)
    scale.add_argument("--dim", type=int, default=2048)
    scale.add_argument("--runs", type=int, default=10)
    scale.add_argument("--protocol-preset", default="paper")
    scale.add_argument("--probe-epochs", type=int, default=3,
                       help="epochs of the side-by-side one-run vs grouped measurement")
    scale.add_argument("--no-full", action="store_true", help="skip the whole (uncapped) protocol")
    scale.add_argument("--full-runs", type=int, default=None,
                       help="runs of the whole protocol (default: --runs); fewer measure a run's epochs sooner, "
                            "and the time of --runs runs is then projected from them")
    args = parser.parse_args(argv)
    if args.scale:
        # the whole protocol at FMA size runs for an hour or more: its progress lines (singerbench.progress) show
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        from singerbench.perfscale import ScaleConfig
        from singerbench.perfscale import main as scale_main

        cfg = ScaleConfig(singers=args.singers, dim=args.dim, runs=args.runs)
        scale_main(cfg, args.protocol_preset, probe_epochs=args.probe_epochs, full=not args.no_full,
                   full_runs=args.full_runs)
        return

    manifest = load(preset=args.preset, seed=0, cache_dir=args.cache_dir, progress=False)
    embedder = resolve_model(args.model).embedder
    source = SegmentSource.for_embedder(embedder)
    segments = list(manifest.segments())
    print(f"model {embedder.name}, corpus synth/{args.preset}: {len(segments)} segments, "
          f"{torch.get_num_threads()} torch threads, best of {args.repeats} timings")

    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddingStore(Path(tmp))
        uncached = timed(lambda: store.embed(embedder, manifest, source, progress=False))
        cached = timed(lambda: store.embed(embedder, manifest, source, progress=False))
    print(f"store:    uncached {uncached:.2f} s, cached {cached:.3f} s -> cached is {uncached / cached:.0f}x faster")

    # end to end (identify audio, decode, resample, separate where needed, embed, store) against the encoder
    # alone on the same segments, already decoded and batched the same way
    all_batches = list(source.batches(segments, 16))

    def encoder_only() -> None:
        with torch.inference_mode():
            for _, x in all_batches:
                embedder.embed(x)

    def end_to_end() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            EmbeddingStore(Path(tmp)).embed(embedder, manifest, SegmentSource.for_embedder(embedder),
                                            progress=False)

    encoder, e2e = side_by_side(encoder_only, end_to_end, args.repeats)
    print(f"pipeline: encoder alone {encoder:.2f} s, end to end {e2e:.2f} s -> end-to-end throughput is "
          f"{encoder / e2e:.2f} of the encoder's ({len(segments) / e2e:.1f} segments/s)")

    subset = segments[: min(len(segments), 96)]
    batches = list(source.batches(subset, 16))

    def embed_batched() -> None:
        with torch.inference_mode():
            for _, x in batches:
                embedder.embed(x)

    def embed_one_by_one() -> None:
        with torch.inference_mode():
            for _, x in batches:
                for i in range(len(x)):
                    embedder.embed(x[i : i + 1])

    batched, single = side_by_side(embed_batched, embed_one_by_one, args.repeats)
    print(f"plugin:   batches of 16 {batched:.2f} s, one by one {single:.2f} s -> batching is {single / batched:.1f}x faster")

    def background_decoding() -> None:
        with torch.inference_mode():
            for _, x in SegmentSource.for_embedder(embedder).batches(subset, 16):
                embedder.embed(x)

    def synchronous_decoding() -> None:
        src = SegmentSource.for_embedder(embedder)
        with torch.inference_mode():
            for i in range(0, len(subset), 16):
                x = torch.from_numpy(np.stack([src.segment(t, o) for t, o in subset[i : i + 16]]))
                embedder.embed(x)

    background, synchronous = side_by_side(background_decoding, synchronous_decoding, args.repeats)
    print(f"decoding: background {background:.2f} s, synchronous {synchronous:.2f} s -> "
          f"background decoding is {synchronous / background:.2f}x faster")
    print(f"(the synth corpus is cached in {station_dir('synth', args.cache_dir)})")


if __name__ == "__main__":
    main()
