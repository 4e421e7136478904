"""The large preset without rendering it: every installed person a singer, drawn training-song counts,
genre families shared by several singers, clones of every kind, and confound as a dial; plus the realism
steps and the voices table."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from singerbench.errors import UserError
from singerbench.synthgen import PRESETS, realism, resolve_preset
from singerbench.synthgen.corpus import home_style, plan
from singerbench.synthgen.voices import PERSONS, VOICES

LARGE = PRESETS["large"]


@pytest.fixture(scope="module")
def singers() -> list[str]:
    found = LARGE.singers()
    if len(found) < 100:
        pytest.skip(f"only {len(found)} of the large preset's voices are installed here (run `make system`)")
    return found


def test_voices_table_counts_each_person_once() -> None:
    assert len(VOICES) == 105 and len(PERSONS) == 100
    same = defaultdict(set)
    for v in VOICES:
        same[v.identity].add(v.id)
    assert same["rh_slt"] == {"rh_slt", "flite_slt"} and same["rh_alan"] == {"rh_alan", "flite_awb"}
    assert same["kal"] == {"kal", "flite_kal"} and same["rh_aleksandr"] == {"rh_aleksandr", "rh_aleksandr_hq"}
    assert {v.engine for v in VOICES} == {"festival", "mbrola", "rhvoice", "pico", "flite"}
    assert all(v.licence and v.package and v.sex in "mf" for v in VOICES)


def test_large_plan_has_every_person_with_drawn_training_counts(singers: list[str]) -> None:
    specs = plan(LARGE, 0)
    real = Counter((s.targets[0], s.role) for s in specs if s.role != "cloned")
    counts = [real[(p, "train")] for p in singers]
    assert min(counts) >= 2 and max(counts) <= 10 and len(set(counts)) >= 7  # spread for per-count analyses
    assert all(real[(p, "val")] == 1 and real[(p, "test")] == 1 for p in singers)
    cloned = [s for s in specs if s.role == "cloned"]
    assert {t for s in cloned for t in s.targets} == set(singers)  # every singer cloned at least once
    kinds = Counter(s.kind for s in cloned)
    assert kinds["vocoder"] == len(singers) and kinds["duet"] == LARGE.duets and kinds["engine_swap"] == 5
    swaps = {s.targets[0]: s.voices[0] for s in cloned if s.kind == "engine_swap"}
    assert swaps["rh_slt"] == "flite_slt" and swaps["kal"] == "flite_kal" and swaps["rh_alan"] == "flite_awb"
    assert all(s.context not in s.targets for s in cloned)


def test_genre_families_are_shared_but_home_styles_are_not(singers: list[str]) -> None:
    styles = {p: home_style(LARGE, 0, p) for p in singers}
    families = Counter(s.name for s in styles.values())
    assert len(families) >= 8 and min(families.values()) >= 4  # a genre is not a singer
    signature = Counter((s.name, s.chords_program, s.bass_program, s.pad_program, s.tonic) for s in styles.values())
    assert len(signature) >= 0.9 * len(singers)  # but a home style nearly is


@pytest.mark.parametrize("confound", [0.0, 0.3, 1.0])
def test_confound_is_the_share_of_real_songs_in_the_home_style(singers: list[str], confound: float) -> None:
    specs = plan(resolve_preset("large", confound), 0)
    real = [s for s in specs if s.role != "cloned"]
    share = np.mean([s.context == s.targets[0] for s in real])
    assert abs(share - confound) < 0.06
    default = plan(LARGE, 0)
    assert [(s.id, s.var_db, s.fx) for s in specs] == [(s.id, s.var_db, s.fx) for s in default]  # only contexts move


def test_confound_must_be_a_probability() -> None:
    with pytest.raises(UserError, match="between 0 and 1"):
        resolve_preset("large", 1.5)
    with pytest.raises(UserError, match="number"):
        resolve_preset("large", "lots")


def test_realism_rings_on_masters_both_stems_and_draws_its_parameters() -> None:
    sr = 16000
    rng = np.random.default_rng(0)
    t = np.arange(3 * sr) / sr
    v = 0.3 * np.sin(2 * np.pi * 220 * t) * (t % 1 < 0.6)
    a = 0.1 * rng.standard_normal(len(t))
    p = realism.Realism(reverb_rt60=0.5, reverb_wet=0.3, eq_low_db=3.0, eq_high_db=-4.0, comp_ratio=3.0,
                        comp_threshold_db=-6.0, mp3_level=0.5)
    wet = realism.reverb(v, sr, p, rng)
    tail = (t % 1 >= 0.65) & (t % 1 < 0.8)
    assert np.abs(wet[tail]).mean() > 10 * np.abs(v[tail]).mean() + 1e-4  # the room rings on after the note
    v2, a2 = realism.master(wet, a, sr, p)
    assert v2.shape == a2.shape == v.shape
    assert not np.allclose(v2, wet) and not np.allclose(a2, a)
    drawn = [realism.draw(np.random.default_rng(i), True, True, 0.3) for i in range(200)]
    assert 0.2 < np.mean([d.mp3_level is not None for d in drawn]) < 0.4
    assert all(0.2 <= d.reverb_rt60 <= 1.0 and d.comp_ratio for d in drawn)
    assert realism.draw(rng, False, False, 0.0) == realism.Realism()


PHRASE_TARGET_NOT_MET = ("the strict per-phrase figure (README, docs/synth.md): one new 6 s phrase named against "
                         "a 2-phrase enrolment; measured 10 of 15 phrases here, 49 % among all 100 voices")


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=PHRASE_TARGET_NOT_MET)
def test_sung_phrases_are_told_apart_among_a_few_voices() -> None:
    """One voice per engine, three new sung phrases each: the speaker plugin names every phrase's singer
    (28 s on an idle 2-core machine). The voice-level target is the corpus test below."""
    from singerbench.synthgen.distinct import identification_rate

    pytest.importorskip("resemblyzer")
    persons = ["kal", "mb_de2", "rh_anna", "pico_en_gb", "flite_rms"]
    if not all(p in LARGE.singers() for p in persons):
        pytest.skip("not every engine is installed here (run `make system`)")
    rate, wrong = identification_rate(persons, n=3)
    assert rate == 1.0, wrong


@pytest.mark.slow
def test_all_sung_identities_are_distinct_on_the_large_corpus(singers: list[str]) -> None:
    """Issue 9's target: on the rendered `large` corpus with confound 0 (a song's backing says nothing of its
    singer), the speaker plugin, enrolled on each singer's training songs, names >= 95 % of the held-out real
    songs among all voices (measured: 98.0 %, 96 of 100 voices with both songs right; docs/synth.md). Needs the corpus rendered:
    `singerbench synth --preset large --confound 0`; its embeddings are computed once into the user store."""
    from singerbench.synthgen.distinct import corpus_embeddings, corpus_identification

    pytest.importorskip("resemblyzer")
    try:
        manifest, table, _ = corpus_embeddings("large", confound=0.0, progress=False)
    except UserError as e:
        pytest.skip(str(e))
    figures = corpus_identification(manifest, table)
    assert figures["voices"] == len(singers) and figures["held_out_songs"] == 2 * len(singers)
    assert figures["identified"] >= 0.95, figures["confusions"]


def test_make_system_installs_every_package_of_the_voices_table() -> None:
    """The Makefile lists the Debian packages by hand; the voices table is where a voice is declared."""
    import shutil
    import subprocess

    from singerbench.synthgen.system import ALL_PACKAGES

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    repo = Path(__file__).resolve().parents[1]
    listed = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(repo),
                             "--eval=print-packages: ; @echo $(SYSTEM_PACKAGES)", "print-packages"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert len(ALL_PACKAGES) > 50 and set(ALL_PACKAGES) <= set(listed), sorted(set(ALL_PACKAGES) - set(listed))

