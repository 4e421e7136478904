"""RunResult: building from a real protocol outcome, JSON round trip, schema validation, result paths."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from jsonschema import Draft202012Validator

from singerbench import PROTOCOL_VERSION, __version__
from singerbench.embedder import Embedder
from singerbench.errors import UserError
from singerbench.manifest import Manifest, Track
from singerbench.presets import QUICK
from singerbench.protocol import ProtocolData, TrackEmbeddings, run_protocol
from singerbench.results import (
    SCHEMA_ID,
    DatasetInfo,
    ModelInfo,
    RunResult,
    default_result_path,
    load_schema,
    request_from_result,
    validate,
)

SMALL = replace(QUICK, name="quick-test", hidden_dim=64)
MODEL = ModelInfo("toy", "tests/toy.py:Toy", "none", "vocals", 16000, 1, 8, "file")
DATASET = DatasetInfo("toyset", "ab" * 32, True, 5, {"train": 10, "val": 5, "test": 5, "cloned": 1})


@pytest.fixture(scope="module")
def result() -> RunResult:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 8)) * 4

    def track(t: tuple[int, ...], tid: str) -> TrackEmbeddings:
        return TrackEmbeddings(tid, t, (centres[list(t)].mean(0) + rng.normal(size=(6, 8))).astype(np.float32))

    data = ProtocolData(
        singers=[f"s{i}" for i in range(5)],
        train=[track((i,), f"s{i}-tr{j}") for i in range(5) for j in range(2)],
        val=[track((i,), f"s{i}-va") for i in range(5)],
        eval_sets={"test": [track((i,), f"s{i}-te") for i in range(5)], "cloned": [track((1, 3), "duet")]},
    )
    outcome = run_protocol(data, SMALL, runs=2, seed=0, class_counts=[3, 5], progress=False)
    return RunResult.from_outcome(outcome, MODEL, DATASET, embedding_seconds=1.5, computed=40, reused=2)


def test_outcome_becomes_a_valid_document(result):
    doc = result.to_dict()
    validate(doc)
    assert doc["schema"] == SCHEMA_ID and doc["singerbench_version"] == __version__
    assert doc["protocol_version"] == PROTOCOL_VERSION
    assert doc["preset"]["name"] == "quick-test" and doc["preset"]["params"]["hidden_dim"] == 64
    assert doc["class_counts"] == [3, 5] and doc["runs"] == 2 and doc["seed"] == 0
    assert {(s["class_count"], s["eval_set"]) for s in doc["scores"]} == {
        (3, "test"), (3, "cloned"), (5, "test"), (5, "cloned")
    }
    assert result.score(3, "test")["tracks"] == 3  # at 3 classes, only the 3 included singers' test tracks
    assert len(doc["run_details"]) == 4
    detail = doc["run_details"][0]
    assert {"s1", "s3"} <= set(detail["classes"]) and len(detail["classes"]) == 3
    duet = detail["evals"]["cloned"]["tracks"][0]
    assert duet["targets"] == ["s1", "s3"] and set(duet) >= {"prediction", "votes", "top5", "top1_correct"}
    assert sum(duet["votes"].values()) == 6
    top1 = result.score(5, "test")["top1"]
    assert math.isclose(top1["std"], float(np.std(top1["values"], ddof=1)))  # sample std
    assert doc["timings"]["embedding_s"] == 1.5 and doc["store"] == {"computed": 40, "reused": 2}
    assert doc["created"].endswith("Z") and {"python", "torch", "numpy", "platform"} <= set(doc["host"])


def test_json_round_trip(result, tmp_path):
    path = result.to_json(tmp_path / "sub" / "r.json")
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temporary file left behind
    back = RunResult.from_json(path)
    assert back.to_dict() == result.to_dict()
    assert back.model == MODEL and back.dataset == DATASET
    assert json.loads(path.read_text())["schema"] == "singerbench-result/2"


def test_schema_is_packaged_draft_2020_12():
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("model"), "'model' is a required property"),
        (lambda d: d["model"].__setitem__("embedding_dim", "eight"), "/model/embedding_dim"),
        (lambda d: d["scores"][0]["top1"].__setitem__("mean", 1.5), "/scores/0/top1/mean"),
        (lambda d: d["dataset"].__setitem__("checksum", "xyz"), "/dataset/checksum"),
        (lambda d: d.__setitem__("created", "yesterday"), "/created"),
        (lambda d: d.__setitem__("colour", "blue"), "'colour' was unexpected"),
        (lambda d: d["run_details"][1]["evals"]["test"]["tracks"][0].pop("prediction"), "/run_details/1/evals/test"),
    ],
)
def test_broken_documents_are_rejected_naming_the_field(result, edit, message):
    doc = copy.deepcopy(result.to_dict())
    edit(doc)
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        validate(doc, "broken.json")


def test_other_schema_version_and_bad_files(tmp_path, result):
    doc = result.to_dict() | {"schema": "singerbench-result/3"}
    with pytest.raises(UserError, match="singerbench-result/3.*reads singerbench-result/1, singerbench-result/2"):
        validate(doc)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        RunResult.from_json(bad)
    with pytest.raises(UserError, match="does not exist"):
        RunResult.from_json(tmp_path / "missing.json")
    bad.write_text(json.dumps({"schema": SCHEMA_ID}))
    with pytest.raises(UserError, match="required property"):
        RunResult.from_json(bad)


def test_default_result_path_sanitises_names(tmp_path):
    p = default_result_path(tmp_path, "hf://owner/repo@main", "mtg", "paper")
    assert p == tmp_path / "results" / "mtg" / "hf_owner_repo_main--paper.json"
    p = default_result_path("lb", "path/to/file.py:Class", "synth tiny", "paper-nologitnorm", weights_id="0123456789abcdef")
    assert p == Path("lb/results/synth_tiny/path_to_file.py_Class@0123456789ab--paper-nologitnorm.json")
    assert default_result_path("lb", "mfcc", "fma", "paper", weights_id="none").name == "mfcc--paper.json"


class _Toy(Embedder):
    name = "toy"
    sample_rate = 22050
    channels = 2
    input_kind = "mixture"
    embedding_dim = 4

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.mean(-1).repeat(1, 2)

    def weights_id(self) -> str:
        return "cafe"


def test_infos_from_embedder_and_manifest(tmp_path):
    m = ModelInfo.from_embedder(_Toy(), spec="tests/test_results.py:_Toy", source="file")
    assert m == ModelInfo("toy", "tests/test_results.py:_Toy", "cafe", "mixture", 22050, 2, 4, "file")
    tracks = [
        Track("a1", tmp_path / "a1.wav", ("a",), "train", (0.0, 6.0)),
        Track("a2", tmp_path / "a2.wav", ("a",), "val", (0.0,)),
        Track("b1", tmp_path / "b1.wav", ("b",), "train", (0.0,)),
        Track("x", tmp_path / "x.wav", ("a", "b"), "cloned", (0.0,)),
    ]
    manifest = Manifest("mini", tracks, ["a", "b"], generated=True)
    d = DatasetInfo.from_manifest(manifest)
    held = {"stems": "none", "offsets": "given"}
    assert d == DatasetInfo("mini", manifest.checksum(), True, 2, {"train": 2, "val": 1, "cloned": 1},
                            {"train": held, "val": held, "cloned": held})


#: a result file of the previous release (schema 1, protocol paper v1), kept as it was committed
VERSION_1 = Path(__file__).resolve().parent / "data" / "result-v1-mfcc.json"


def test_version_1_files_are_still_read_but_cannot_be_rerun():
    old = RunResult.from_json(VERSION_1)
    assert old.schema == "singerbench-result/1" and old.request == {}
    with pytest.raises(UserError, match="does not record how it was made"):
        request_from_result(old, "mfcc--paper.json")
    assert "request" not in json.loads(VERSION_1.read_text())


def test_preset_record_names_its_deviations(result):
    doc = result.to_dict()
    assert doc["preset"]["leaderboard"] is False and doc["preset"]["deviations"] == list(SMALL.deviations)
    assert doc["request"] == {}  # built without a request: readers treat it as "cannot reproduce"


def _request(**changes) -> dict:
    req = {"argv": ["singerbench", "run"], "model": "mfcc", "dataset": "synth", "dataset_options": {"preset": "tiny"},
           "preset": "quick", "preset_version": QUICK.version, "runs": 2, "seed": 3, "class_counts": None,
           "separator": None, "batch_size": 16, "device": "cpu", "offsets": None, "package_version": "x",
           "torch_version": "y"}
    return req | changes


def test_request_is_validated_and_rebuilds_the_run_request(result):
    doc = copy.deepcopy(result.to_dict()) | {"request": _request()}
    back = RunResult.from_dict(doc)
    req = request_from_result(back)
    assert (req.model, req.dataset, req.dataset_options, req.preset, req.runs, req.seed) == (
        "mfcc", "synth", {"preset": "tiny"}, "quick", 2, 3)
    assert (req.device, req.batch_size, req.class_counts, req.separator) == ("cpu", 16, None, None)
    doc["request"].pop("seed")
    with pytest.raises(UserError, match="/request"):
        validate(doc)
    stale = RunResult.from_dict(doc | {"request": _request(preset_version="0")})
    with pytest.raises(UserError, match="preset quick v0; this singerbench has v2"):
        request_from_result(stale)
