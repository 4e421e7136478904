"""`singerbench run` end to end: every station for real on the tiny generated corpus and on miniature real layouts."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from test_datasets_published import build_miniature
from test_plugins import PLUGIN_SOURCE

from singerbench.cli import main
from singerbench.results import RunResult, validate


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def cache(shared_corpus_cache) -> list[str]:
    """Options sharing the rendered tiny corpus but a fresh embedding store per test."""
    return ["--cache-dir", str(shared_corpus_cache), "--no-progress"]


QUICK = ["--preset", "quick", "--runs", "2"]


def test_run_twice_embeds_nothing_the_second_time_and_reproduces_scores(tiny_synth, cache, tmp_path, capsys):
    out1, out2 = tmp_path / "a.json", tmp_path / "b.json"
    args = ["run", "--model", "mfcc", "--dataset", "synth", "--synth-preset", "tiny", *QUICK, *cache]
    code, stdout, err = run_cli([*args, "-o", str(out1)], capsys)
    assert code == 0, err
    assert "| mfcc" in stdout and "cloned top-1" in stdout
    code, _, err = run_cli([*args, "-o", str(out2)], capsys)
    assert code == 0, err

    doc1, doc2 = json.loads(out1.read_text()), json.loads(out2.read_text())
    validate(doc1)
    n_segments = sum(len(t.vocal_offsets) for t in tiny_synth.tracks)
    assert doc1["store"] == {"computed": n_segments, "reused": 0}
    assert doc2["store"] == {"computed": 0, "reused": n_segments}
    assert doc1["scores"] == doc2["scores"]
    assert doc1["run_details"] == doc2["run_details"]
    assert doc1["dataset"]["checksum"] == tiny_synth.checksum()
    result = RunResult.from_json(out1)
    assert set(result.eval_sets()) == {"test", "cloned"}
    # MFCC of mixtures hears the backing: real test tracks well above chance (10 singers)...
    assert result.score(10, "test")["top1"]["mean"] >= 0.5
    # ...and on clones it names the singer whose home style the backing is in, as the probe shows.
    code, stdout, err = run_cli(["probe", str(out1), "--dataset", "synth", "--synth-preset", "tiny", *cache], capsys)
    assert code == 0, err
    row = next(line for line in stdout.splitlines() if line.startswith("| mfcc"))
    voice, backing, other = (float(cell.split("±")[0]) for cell in row.strip("|").split("|")[5:8])
    assert backing >= 50.0 and backing > voice
    assert voice + backing + other == pytest.approx(100.0, abs=0.2)


def test_a_result_reruns_from_its_own_request(tiny_synth, cache, tmp_path, capsys):
    """The result names everything to rerun it: `run --from-result` and its recorded argv both reproduce it."""
    out = tmp_path / "r.json"
    args = ["run", "--model", "mfcc", "--dataset", "synth", "--synth-preset", "tiny", *QUICK, "--seed", "5", *cache]
    code, _, err = run_cli([*args, "-o", str(out)], capsys)
    assert code == 0, err
    original = RunResult.from_json(out)
    req = original.request
    assert (req["model"], req["dataset"], req["dataset_options"]) == ("mfcc", "synth", {"preset": "tiny"})
    assert (req["preset"], req["preset_version"], req["runs"], req["seed"]) == ("quick", "2", 2, 5)
    assert (req["separator"], req["batch_size"], req["device"], req["class_counts"], req["offsets"]) == (
        None, 16, "cpu", None, None)
    assert req["torch_version"] == torch.__version__ and req["package_version"] == original.singerbench_version
    assert req["argv"] == ["singerbench", "run", "--model", "mfcc", "--dataset", "synth", "--synth-preset", "tiny",
                           "--preset", "quick", "--runs", "2", "--seed", "5", "--batch-size", "16", "--device", "cpu"]

    code, stdout, err = run_cli(["run", "--from-result", str(out), *cache], capsys)
    assert code == 0, err
    assert f"reproduced {out}: identical scores and per-track predictions" in stdout
    rerun = RunResult.from_json(tmp_path / "r.rerun.json")
    assert rerun.scores == original.scores and rerun.run_details == original.run_details
    assert rerun.request == original.request

    by_argv = tmp_path / "argv.json"
    code, _, err = run_cli([*req["argv"][1:], *cache, "-o", str(by_argv)], capsys)
    assert code == 0, err
    assert RunResult.from_json(by_argv).run_details == original.run_details

    code, _, err = run_cli(["run", "--from-result", str(out), "--runs", "3", *cache], capsys)
    assert code == 1 and err.strip() == "error: --from-result takes every setting from the file; drop --runs"
    version_1 = Path(__file__).resolve().parent / "data" / "result-v1-mfcc.json"  # the previous release's file
    code, _, err = run_cli(["run", "--from-result", str(version_1), *cache], capsys)
    assert code == 1 and "does not record how it was made" in err and len(err.strip().splitlines()) == 1


def test_speaker_model_is_well_above_chance_on_real_and_cloned(tiny_synth, cache, tmp_path, capsys):
    out = tmp_path / "speaker.json"
    code, _, err = run_cli(
        ["run", "--model", "speaker", "--dataset", "synth", "--synth-preset", "tiny", *QUICK, *cache, "-o", str(out)],
        capsys,
    )
    assert code == 0, err
    result = RunResult.from_json(out)
    assert result.score(10, "test")["top1"]["mean"] >= 0.7
    assert result.score(10, "cloned")["top1"]["mean"] >= 0.3  # chance is 0.1 (0.2 for a duet)


def test_plugin_file_outside_the_repository_runs(tiny_synth, cache, tmp_path, capsys):
    plugin = tmp_path / "elsewhere" / "plugin.py"
    plugin.parent.mkdir()
    plugin.write_text(PLUGIN_SOURCE)
    out = tmp_path / "band.json"
    code, _, err = run_cli(
        ["run", "--model", f"{plugin}:BandEnergy", "--dataset", "synth", "--synth-preset", "tiny", *QUICK, *cache,
         "-o", str(out)],
        capsys,
    )
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert doc["model"]["name"] == "band-energy"
    assert doc["model"]["source"].startswith("file ")


@pytest.mark.parametrize("dataset", ["mtg", "fma"])
@pytest.mark.parametrize("splits_form", ["splits", "zip"])
def test_real_layout_miniature_runs_end_to_end(dataset, splits_form, tmp_path, capsys):
    mini = build_miniature(dataset, tmp_path / "mini")
    out = tmp_path / "result.json"
    code, _, err = run_cli(
        ["run", "--model", "mfcc", "--dataset", dataset, "--data-root", str(mini["data_root"]),
         "--splits", str(mini[splits_form]), *QUICK, "--cache-dir", str(tmp_path / "cache"), "--no-progress",
         "-o", str(out)],
        capsys,
    )
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert doc["dataset"]["name"] == dataset
    assert doc["dataset"]["singers"] == 4
    # The miniature's generated "singers" are distinct tones: the protocol must find them.
    assert doc["scores"][0]["top1"]["mean"] >= 0.5


def _mtg_splits_variant(mini: dict, out: Path, change) -> Path:
    """A copy of the miniature's MTG split folder with one document changed by ``change(docs)``."""
    docs = {role: json.loads((mini["splits"] / f"mtg_{role}_set.json").read_text()) for role in ("train", "val", "test")}
    change(docs)
    out.mkdir(parents=True)
    for role, doc in docs.items():
        (out / f"mtg_{role}_set.json").write_text(json.dumps(doc))
    return out


def test_bad_inputs_end_in_one_line_and_write_nothing(tmp_path, capsys):
    """Every bad input of the real-data stations: one `error:` line, exit 1, no result file, no traceback."""
    from test_datasets_closed import _closed_rows, _write_csv

    mini = build_miniature("mtg", tmp_path / "mini")
    first = lambda doc: next(iter(doc))  # noqa: E731
    splits = {
        "wrong shape": _mtg_splits_variant(
            mini, tmp_path / "s1", lambda d: d["test"].update({first(d["test"]): [d["test"][first(d["test"])]]})
        ),
        "stranger": _mtg_splits_variant(
            mini, tmp_path / "s2", lambda d: d["test"].update(stranger=d["test"][first(d["test"])])
        ),
        "no segments": _mtg_splits_variant(
            mini, tmp_path / "s3", lambda d: d["val"][first(d["val"])].update(vocal_segs=[])
        ),
    }
    mp3s = sorted(mini["data_root"].rglob("*.mp3"))
    broken_root = tmp_path / "broken"
    shutil.copytree(mini["data_root"], broken_root)
    (broken_root / mp3s[0].relative_to(mini["data_root"])).write_bytes(b"ID3 this is not an mp3 stream" * 40)
    mp3s[1].unlink()
    ref = _write_csv(tmp_path / "closed.csv", _closed_rows(tmp_path))
    cloned = _write_csv(tmp_path / "cloned.csv", [
        {"track_id": "fake", "audio": _closed_rows(tmp_path)[0]["audio"], "singers": "zed", "vocal_offsets": "0"}
    ])

    out = tmp_path / "never.json"
    base = ["--preset", "quick", "--runs", "1", "--cache-dir", str(tmp_path / "c"), "--no-progress", "-o", str(out)]
    mtg = ["run", "--model", "mfcc", "--dataset", "mtg"]
    cases = {
        "missing audio": ([*mtg, "--data-root", str(mini["data_root"]), "--splits", str(mini["splits"]), *base],
                          "missing"),
        "unreadable audio": ([*mtg, "--data-root", str(broken_root), "--splits", str(mini["splits"]), *base],
                             "not a readable audio stream"),
        "split file of the wrong shape": ([*mtg, "--data-root", str(mini["data_root"]),
                                           "--splits", str(splits["wrong shape"]), *base], "expected"),
        "artist only in the test file": ([*mtg, "--data-root", str(mini["data_root"]),
                                          "--splits", str(splits["stranger"]), *base],
                                         "stranger is in the test split file but not in the train file"),
        "empty vocal segment list": ([*mtg, "--data-root", str(mini["data_root"]),
                                      "--splits", str(splits["no segments"]), *base], "empty vocal segment list"),
        "cloned singer the reference lacks": (["run", "--model", "mfcc", "--dataset", "cloned", "--manifest",
                                               str(cloned), "--reference", str(ref), *base],
                                              "names singer zed, whom the reference set"),
        "unknown model": (["run", "--model", "nope", "--dataset", "synth", *base], "unknown model 'nope'"),
        "unknown dataset": (["run", "--model", "mfcc", "--dataset", "nope", *base], "unknown dataset 'nope'"),
        "unknown preset": (["run", "--model", "mfcc", "--dataset", "synth", "--synth-preset", "tiny", *base,
                            "--preset", "nope"], "nope"),
    }
    for case, (args, needle) in cases.items():
        code, _, err = run_cli(args, capsys)
        assert code == 1, (case, err)
        line = err.strip().splitlines()[-1]
        assert line.startswith("error: ") and needle in line, (case, err)
        assert "Traceback" not in err
        assert not out.exists(), case


def test_cloned_evaluation_with_bring_your_own_manifests(tiny_synth, cache, tmp_path, capsys):
    """Closed set = the generated singers' real songs; cloned set = their clones, as CSV manifests."""
    fields = ["track_id", "audio", "singers", "role", "vocal_offsets", "genre"]

    def write(path: Path, tracks) -> None:
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            for t in tracks:
                w.writerow({"track_id": t.id, "audio": str(t.audio), "singers": ";".join(t.singers),
                            "role": t.role, "vocal_offsets": ";".join(str(o) for o in t.vocal_offsets),
                            "genre": t.genre or ""})

    closed, cloned = tmp_path / "closed.csv", tmp_path / "cloned.csv"
    write(closed, [t for t in tiny_synth.tracks if t.role != "cloned"])
    write(cloned, tiny_synth.by_role("cloned"))
    out = tmp_path / "cloned.json"
    code, _, err = run_cli(
        ["run", "--model", "mfcc", "--dataset", "cloned", "--manifest", str(cloned), "--reference", str(closed),
         *QUICK, *cache, "-o", str(out)],
        capsys,
    )
    assert code == 0, err
    result = RunResult.from_json(out)
    assert "cloned" in result.eval_sets()
    assert result.score(10, "cloned")["tracks"] == len(tiny_synth.by_role("cloned"))
