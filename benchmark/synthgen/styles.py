"""Home styles: each singer's habitual musical context, fixed so that the backing alone predicts the singer.

This is the confound the paper found in commercial catalogues (an artist's songs share instruments, tempo
and key). A style fixes the General MIDI instruments, a tempo range, the key and register, the drum pattern
and comping rhythm, and a few chord progressions; each track draws its tempo and progression from these.
Patterns are strings over the steps of one bar: ``x`` a hit, ``o`` a soft hit, ``.`` nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)

# General MIDI percussion keys (channel 10).
KICK, SIDESTICK, SNARE, CLAP, CLOSED_HAT, OPEN_HAT, CRASH, RIDE, TAMBOURINE, COWBELL, SHAKER = (
    36, 37, 38, 39, 42, 46, 49, 51, 54, 56, 70,
)


@dataclass(frozen=True)
class HomeStyle:
    """One habitual context. Programs are General MIDI program numbers (0-based)."""

    name: str
    chords_program: int  # comping instrument
    bass_program: int
    pad_program: int | None  # sustained chords or arpeggio layer, or none
    tempo: tuple[int, int]  # BPM range, inclusive
    beats_per_bar: int
    steps_per_bar: int  # grid of the patterns below
    tonic: int  # pitch class, 0 = C
    mode: tuple[int, ...]  # scale intervals
    chord_octave: int  # MIDI note of the octave the chords sit in (e.g. 60 = middle C)
    bass_octave: int
    comp: str  # chord hits per step
    bass: str  # bass hits per step (root, fifth on ``o``)
    drums: dict[int, str] = field(default_factory=dict)
    progressions: tuple[tuple[int, ...], ...] = ((0, 4, 5, 3),)  # scale degrees, one chord per bar
    arpeggio: bool = False  # pad plays broken chords on the step grid instead of holding them

    @property
    def key_name(self) -> str:
        names = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
        return f"{names[self.tonic]} {'major' if self.mode == MAJOR else 'minor'}"


STYLES: tuple[HomeStyle, ...] = (
    HomeStyle(
        "country", 25, 32, 40, (100, 112), 4, 16, 7, MAJOR, 60, 36,
        comp="x.o.x.o.x.o.x.o.", bass="x.......o.......",
        drums={KICK: "x.......x.......", SNARE: "....x.......x...", CLOSED_HAT: "x.x.x.x.x.x.x.x."},
        progressions=((0, 3, 4, 0), (0, 4, 3, 4), (0, 0, 3, 4)),
    ),
    HomeStyle(
        "organ_soul", 16, 33, 4, (84, 94), 4, 16, 10, MAJOR, 60, 36,
        comp="x.....x...x.....", bass="x..o..x...x..o..",
        drums={KICK: "x.....x...x.....", SNARE: "....x.......x...", CLOSED_HAT: "x.xxx.xxx.xxx.xx"},
        progressions=((0, 5, 1, 4), (0, 3, 1, 4), (5, 3, 0, 4)),
    ),
    HomeStyle(
        "piano_ballad", 0, 35, 48, (64, 74), 4, 8, 5, MAJOR, 60, 36,
        comp="x.o.x.o.", bass="x...o...",
        drums={KICK: "x.......", SIDESTICK: "....x...", CLOSED_HAT: "o.o.o.o."},
        progressions=((0, 5, 3, 4), (0, 2, 3, 4), (5, 3, 0, 4)),
    ),
    HomeStyle(
        "disco", 7, 36, 61, (116, 126), 4, 16, 9, MINOR, 60, 33,
        comp="..x...x...x...x.", bass="x.o.x.o.x.o.x.o.",
        drums={KICK: "x...x...x...x...", CLAP: "....x.......x...", OPEN_HAT: "..x...x...x...x.",
               CLOSED_HAT: "x.o.x.o.x.o.x.o."},
        progressions=((0, 3, 6, 2), (0, 5, 6, 4), (0, 3, 0, 4)),
    ),
    HomeStyle(
        "folk_waltz", 21, 32, 24, (132, 150), 3, 6, 2, MINOR, 60, 38,
        comp="..x.x.", bass="x.....", arpeggio=True,
        drums={KICK: "x.....", TAMBOURINE: "..x.x."},
        progressions=((0, 3, 4, 0), (0, 6, 2, 4), (0, 5, 3, 4)),
    ),
    HomeStyle(
        "metal", 30, 34, 29, (150, 168), 4, 16, 4, MINOR, 52, 28,
        comp="x.xxx.xxx.xxx.xx", bass="x.xxx.xxx.xxx.xx",
        drums={KICK: "xxxxxxxxxxxxxxxx", SNARE: "....x.......x...", CRASH: "x.......x......."},
        progressions=((0, 5, 6, 0), (0, 2, 5, 6), (0, 6, 5, 4)),
    ),
    HomeStyle(
        "synthpop", 81, 38, 89, (108, 118), 4, 16, 1, MINOR, 60, 37,
        comp="x..x..x...x..x..", bass="x.xx.xx.x.xx.xx.", arpeggio=True,
        drums={KICK: "x...x...x...x...", CLAP: "....x.......x...", CLOSED_HAT: "..x...x...x...x."},
        progressions=((0, 5, 2, 6), (5, 3, 0, 6), (0, 3, 5, 4)),
    ),
    HomeStyle(
        "jazz_swing", 11, 32, 65, (120, 140), 4, 12, 3, MAJOR, 60, 36,
        comp="...x.....x..", bass="x..x..x..x..",
        drums={RIDE: "x..x.xx..x.x", CLOSED_HAT: "...x.....x..", KICK: "o..........."},
        progressions=((1, 4, 0, 5), (0, 5, 1, 4), (2, 5, 1, 4)),
    ),
    HomeStyle(
        "reggae", 27, 33, 17, (70, 80), 4, 16, 9, MAJOR, 60, 33,
        comp="....x.......x...", bass="x..o..x.....o...",
        drums={KICK: "........x.......", SIDESTICK: "........x.......", CLOSED_HAT: "x.x.x.x.x.x.x.x.",
               COWBELL: "..o...o...o...o."},
        progressions=((0, 3, 0, 4), (0, 4, 3, 3), (5, 4, 0, 0)),
    ),
    HomeStyle(
        "baroque", 6, 42, 73, (88, 100), 4, 8, 4, MAJOR, 60, 36,
        comp="xoxoxoxo", bass="x.o.x.o.", arpeggio=True,
        drums={},
        progressions=((0, 4, 5, 2), (0, 3, 4, 0), (0, 5, 3, 4)),
    ),
)


# --- genre families (the large preset) ------------------------------------------------------------------------
# Each style above is a genre family: its drums, comping and bass rhythms, progressions and tempo range are
# shared by every singer whose home is in that family. A singer's home style varies the family by its
# instruments (drawn from the family's alternatives: comping, bass, pad or none), key and a narrower tempo
# window, so the backing still points to the singer (the catalogue confound) while a genre is not a singer.
FAMILY_PROGRAMS: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int | None, ...]]] = {
    "country": ((25, 24, 105, 22), (32, 33, 34), (40, 41, None)),
    "organ_soul": ((16, 17, 18, 4), (33, 34, 32), (4, 61, None)),
    "piano_ballad": ((0, 1, 2, 4), (35, 32, 42), (48, 49, 89, None)),
    "disco": ((7, 27, 28, 5), (36, 37, 38), (61, 48, 62)),
    "folk_waltz": ((21, 23, 24, 46), (32, 43, 58), (24, 46, 71)),
    "metal": ((30, 29, 31), (34, 33, 36), (29, 30, None)),
    "synthpop": ((81, 80, 84, 90), (38, 39, 87), (89, 88, 91, 94)),
    "jazz_swing": ((11, 0, 26, 12), (32, 35, 43), (65, 66, 56, None)),
    "reggae": ((27, 16, 28), (33, 34, 38), (17, 18, 62)),
    "baroque": ((6, 45, 46, 19), (42, 43, 70), (73, 68, 40, 48)),
}
TEMPO_WINDOW = 6  # BPM width of a singer's own tempo range inside (a widened) family range


def singer_style(family: HomeStyle, rng) -> HomeStyle:
    """A singer's home style: ``family`` with drawn instruments, key and tempo window (``rng``: numpy Generator)."""
    comps, basses, pads = FAMILY_PROGRAMS[family.name]
    lo, hi = family.tempo
    centre = int(rng.integers(lo - 6, hi + 7))
    return replace(
        family,
        chords_program=int(comps[int(rng.integers(len(comps)))]),
        bass_program=int(basses[int(rng.integers(len(basses)))]),
        pad_program=pads[int(rng.integers(len(pads)))],
        tonic=int(rng.integers(12)),
        tempo=(centre - TEMPO_WINDOW // 2, centre + TEMPO_WINDOW // 2),
    )
