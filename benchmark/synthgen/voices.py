"""The voices table: every voice the generator can sing with, and the one place a voice is declared.

A voice is one engine's rendering of one real recorded speaker (Festival and MBROLA diphones, RHVoice, Pico
and Flite statistical or unit voices, all trained on or cut from one person's recordings). ``person`` names
the speaker: the same person reached through two engines (CMU ARCTIC slt in RHVoice and Flite, awb as RHVoice
alan and Flite awb, kal in Festival and Flite) or two voice folders (RHVoice aleksandr/aleksandr-hq,
evgeniy-eng/evgeniy-rus) counts as one identity. A singer of the corpus is a person; its *primary* voice (the
one whose id is the person id) sings its songs, the others make engine-swap clones.

Licences differ per engine; the corpus renders on the user's machine for research (docs/synth.md).
"""

from __future__ import annotations

from dataclasses import dataclass

FESTIVAL_LICENCE = "Festvox/CSTR diphone voice: free use, see the Debian package's copyright"
MBROLA_LICENCE = "MBROLA voice licence: non-commercial use, with the mbrola program only"
RHVOICE_LICENCE = "RHVoice voice: mostly CC BY-NC-ND 4.0, see the Debian package's copyright"
PICO_LICENCE = "SVOX Pico: Apache-2.0"
FLITE_LICENCE = "Flite/CMU ARCTIC: BSD-style free licence"
#: default sung range (MIDI) by sex, for voices without a measured one: G2-F#3 ... about 98-185 Hz / F3-E4
SEX_RANGE = {"m": (43, 54), "f": (53, 64)}


@dataclass(frozen=True)
class Voice:
    """One voice: engine, the engine's name for it, language, sex, Debian package, licence, and its person."""

    id: str
    engine: str
    name: str  # the engine's own name (Festival voice, MBROLA database, RHVoice folder, Pico language, Flite voice)
    language: str
    sex: str  # "m" or "f"
    package: str  # the Debian package that holds the voice
    licence: str
    person: str = ""  # identity; empty means the voice's own id
    low: int = 0  # lowest sung MIDI note (0: the sex default)
    high: int = 0

    @property
    def identity(self) -> str:
        return self.person or self.id

    @property
    def range(self) -> tuple[int, int]:
        return (self.low, self.high) if self.low else SEX_RANGE[self.sex]


# Festival ranges: speaking F0 medians measured on these voices (Festival 2.5, `text2wave`) are, in Hz: kal 105,
# ked 102, lp 210, pc 121, suo_fi_lj 167, hy_fi_mv 104, dita 222, krb 258, machac 100, ph 136. Each range runs
# from 3 semitones below to 8 above that pitch (rounded to MIDI notes).
_FESTIVAL = (
    ("kal", "kal_diphone", "festvox-kallpc16k", "en", "m", 41, 52),
    ("ked", "ked_diphone", "festvox-kdlpc16k", "en", "m", 40, 51),
    ("ita_lp", "lp_diphone", "festvox-italp16k", "it", "f", 53, 64),
    ("ita_pc", "pc_diphone", "festvox-itapc16k", "it", "m", 43, 54),
    ("fin_lj", "suo_fi_lj_diphone", "festvox-suopuhe-lj", "fi", "f", 49, 60),
    ("fin_mv", "hy_fi_mv_diphone", "festvox-suopuhe-mv", "fi", "m", 41, 52),
    ("cze_dita", "czech_dita", "festvox-czech-dita", "cs", "f", 54, 65),
    ("cze_krb", "czech_krb", "festvox-czech-krb", "cs", "f", 57, 68),
    ("cze_machac", "czech_machac", "festvox-czech-machac", "cs", "m", 40, 51),
    ("cze_ph", "czech_ph", "festvox-czech-ph", "cs", "m", 46, 57),
)
# MBROLA: the 51 voices that render cleanly through espeak-ng (language and sex from espeak-ng's mb-* files).
_MBROLA = (
    ("af1", "af", "m"), ("br1", "pt-br", "m"), ("br2", "pt-br", "f"), ("br3", "pt-br", "m"),
    ("br4", "pt-br", "f"), ("ca1", "fr-ca", "m"), ("ca2", "fr-ca", "m"), ("cr1", "hr", "m"),
    ("cz2", "cs", "m"), ("de1", "de", "f"), ("de2", "de", "m"), ("de3", "de", "f"),
    ("de4", "de", "m"), ("de5", "de", "f"), ("de6", "de", "m"), ("de7", "de", "f"),
    ("de8", "de", "m"), ("ee1", "et", "m"), ("en1", "en-gb", "m"), ("es1", "es", "m"),
    ("es2", "es", "m"), ("fr1", "fr", "m"), ("fr2", "fr", "f"), ("fr3", "fr", "m"),
    ("fr4", "fr", "f"), ("fr5", "fr-be", "m"), ("fr6", "fr", "m"), ("fr7", "fr", "m"),
    ("gr2", "el", "m"), ("hu1", "hu", "f"), ("ic1", "is", "m"), ("id1", "id", "m"),
    ("ir1", "fa", "m"), ("it1", "it", "m"), ("it2", "it", "f"), ("it3", "it", "m"),
    ("it4", "it", "f"), ("la1", "la", "m"), ("lt1", "lt", "m"), ("lt2", "lt", "m"),
    ("ma1", "ms", "f"), ("nl2", "nl", "m"), ("nl3", "nl", "f"), ("pl1", "pl", "f"),
    ("pt1", "pt", "f"), ("ro1", "ro", "m"), ("sw1", "sv", "m"), ("sw2", "sv", "f"),
    ("us1", "en", "f"), ("us2", "en", "m"), ("us3", "en", "m"),
)
# RHVoice 1.8: 34 voice folders, 32 speakers; (folder, language, sex, Debian package suffix).
_RHVOICE = (
    ("Leticia-F123", "pt-br", "f", "brazilian-portuguese"), ("alan", "en", "m", "english"),
    ("aleksandr", "ru", "m", "russian"), ("aleksandr-hq", "ru", "m", "russian"),
    ("anatol", "uk", "m", "ukrainian"), ("anna", "ru", "f", "russian"), ("arina", "ru", "f", "russian"),
    ("artemiy", "ru", "m", "russian"), ("azamat", "ky", "m", "kyrgyz"), ("bdl", "en", "m", "english"),
    ("clb", "en", "f", "english"), ("elena", "ru", "f", "russian"), ("evgeniy-eng", "en", "m", "english"),
    ("evgeniy-rus", "ru", "m", "russian"), ("hana", "sq", "f", "albanian"), ("irina", "ru", "f", "russian"),
    ("kiko", "mk", "m", "macedonian"), ("lyubov", "en", "f", "english"), ("magda", "pl", "f", "polish"),
    ("marianna", "uk", "f", "ukrainian"), ("mikhail", "ru", "m", "russian"),
    ("natalia", "uk", "f", "ukrainian"), ("natan", "pl", "m", "polish"), ("nazgul", "ky", "f", "kyrgyz"),
    ("pavel", "ru", "m", "russian"), ("slt", "en", "f", "english"), ("spomenka", "eo", "f", "esperanto"),
    ("suze", "mk", "f", "macedonian"), ("talgat", "tt", "m", "tatar"), ("tatiana", "ru", "f", "russian"),
    ("victoria", "ru", "f", "russian"), ("vitaliy", "ru", "m", "russian"),
    ("volodymyr", "uk", "m", "ukrainian"), ("yuriy", "ru", "m", "russian"),
)
# SVOX Pico: six voices, one per language, all female speakers.
_PICO = (("en-US", "en"), ("en-GB", "en"), ("de-DE", "de"), ("es-ES", "es"), ("fr-FR", "fr"), ("it-IT", "it"))
# Flite: rms is its own speaker; awb, slt and kal are people already reached through RHVoice or Festival.
_FLITE = (("rms", "m", ""), ("awb", "m", "rh_alan"), ("slt", "f", "rh_slt"), ("kal", "m", "kal"))
_SAME_PERSON = {"aleksandr-hq": "rh_aleksandr", "evgeniy-rus": "rh_evgeniy_eng"}


def _rh_id(folder: str) -> str:
    return "rh_" + folder.lower().replace("-", "_")


VOICES: tuple[Voice, ...] = (
    *(Voice(i, "festival", n, lang, sex, pkg, FESTIVAL_LICENCE, low=lo, high=hi)
      for i, n, pkg, lang, sex, lo, hi in _FESTIVAL),
    *(Voice(f"mb_{n}", "mbrola", n, lang, sex, f"mbrola-{n}", MBROLA_LICENCE) for n, lang, sex in _MBROLA),
    *(Voice(_rh_id(n), "rhvoice", n, lang, sex, f"rhvoice-{pkg}", RHVOICE_LICENCE, person=_SAME_PERSON.get(n, ""))
      for n, lang, sex, pkg in _RHVOICE),
    *(Voice("pico_" + n.lower().replace("-", "_"), "pico", n, lang, "f", "libttspico-utils", PICO_LICENCE)
      for n, lang in _PICO),
    *(Voice(f"flite_{n}", "flite", n, "en", sex, "flite", FLITE_LICENCE, person=p) for n, sex, p in _FLITE),
)
VOICE_BY_ID = {v.id: v for v in VOICES}
#: every person once, in table order, mapped to its primary voice (the voice whose id is the person)
PERSONS: dict[str, Voice] = {v.identity: VOICE_BY_ID[v.identity] for v in VOICES}
#: the ten Festival voices: the singers of the tiny, small and full presets
FESTIVAL_IDS: tuple[str, ...] = tuple(v.id for v in VOICES if v.engine == "festival")


def other_voices(person: str) -> list[Voice]:
    """The voices of ``person`` other than its primary one (engine or folder swaps)."""
    return [v for v in VOICES if v.identity == person and v.id != person]


# One-syllable words per language (Festival's four checked: its lexicon gives each exactly one syllable, which
# singing mode needs). Other languages sing open CV syllables, which every front end reads as one syllable;
# Cyrillic-script languages get them in Cyrillic so RHVoice does not switch to another language's voice.
_LATIN_CV = tuple("la na ma da ta lo no mo do so si mi ni li tu lu ku ka ko ke me ne le te vo va".split())
SYLLABLES: dict[str, tuple[str, ...]] = {
    "en": tuple("la na ma da lo no mo do go so day may way say high my oh low see me you new love home "
                "sun moon rain night light".split()),
    "it": tuple("la na ma da ta lo no mo do so re mi fa sol si tu me te le ne ve va vo ro ri ra".split()),
    "fi": tuple("la na ma ta lo no mo so si mi ni li tu lu ku ka ko ke me ne le te vo va".split()),
    "cs": _LATIN_CV + ("ja", "jo"),
}
_CYRILLIC_CV = tuple("ла на ма да та ло но мо до со си ми ни ли ту лу ку ка ко ке ме не ле те во ва".split())
_CYRILLIC = {"ru", "uk", "ky", "tt", "mk"}


def syllables(language: str) -> tuple[str, ...]:
    """The syllables a voice of ``language`` sings."""
    if language in SYLLABLES:
        return SYLLABLES[language]
    return _CYRILLIC_CV if language in _CYRILLIC else _LATIN_CV


@dataclass(frozen=True)
class Note:
    """A sung syllable: start and length in seconds from the start of the vocal line, MIDI pitch, text."""

    start: float
    dur: float
    pitch: float
    text: str


def midi_to_hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)
