"""The plugin API: every way to name a model, and `validate` naming each contract violation."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from singerbench.cli import main
from singerbench.embedder import Embedder
from singerbench.errors import UserError
from singerbench.registry import register_model, registered_models, resolve_model
from singerbench.validate import validate_embedder

PLUGIN_SOURCE = textwrap.dedent(
    '''
    import torch
    from singerbench.embedder import Embedder

    class BandEnergy(Embedder):
        """Log energy in 8 frequency bands: a real (if weak) embedding with no weights."""
        name = "band-energy"
        sample_rate = 8000
        channels = 1
        input_kind = "mixture"
        embedding_dim = 8

        def embed(self, batch):
            spec = torch.fft.rfft(batch[:, 0], dim=-1).abs() ** 2
            bands = torch.stack([b.mean(-1) for b in spec.chunk(8, dim=-1)], dim=-1)
            return torch.log(bands + 1e-8)

    class WrongShape(BandEnergy):
        name = "wrong-shape"
        def embed(self, batch):
            return super().embed(batch)[:, :5]

    class ReturnsNaN(BandEnergy):
        name = "returns-nan"
        def embed(self, batch):
            out = super().embed(batch)
            out[0, 0] = float("nan")
            return out

    class BatchStats(BandEnergy):
        name = "batch-stats"
        def embed(self, batch):
            out = super().embed(batch)
            return out - out.mean(0, keepdim=True)
    '''
)


@pytest.fixture
def plugin_file(tmp_path: Path) -> Path:
    path = tmp_path / "outside" / "my_plugin.py"
    path.parent.mkdir()
    path.write_text(PLUGIN_SOURCE)
    return path


def test_file_plugin_resolves_and_passes_validation(plugin_file):
    model = resolve_model(f"{plugin_file}:BandEnergy")
    assert model.embedder.name == "band-energy"
    assert not model.embedder.training
    assert model.source.startswith("file ")
    report = validate_embedder(model.embedder)
    assert report.ok, report.problems
    assert len(report.checks) >= 4


@pytest.mark.parametrize(
    ("cls", "needle"),
    [
        ("WrongShape", "wrong output shape: got (3, 5) for a batch of 3, expected (3, 8)"),
        ("ReturnsNaN", "output holds NaN: 1 of 24 values are not finite"),
        ("BatchStats", "batch-size dependence"),
    ],
)
def test_validate_names_the_violation(plugin_file, capsys, cls, needle):
    assert main(["validate", f"{plugin_file}:{cls}"]) == 1
    err = capsys.readouterr().err
    assert needle in err
    assert "violates the plugin contract" in err
    assert "Traceback" not in err


def test_validate_cli_accepts_good_plugin(plugin_file, capsys):
    assert main(["validate", f"{plugin_file}:BandEnergy"]) == 0
    assert "passes the plugin contract" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("no-such-model", "unknown model 'no-such-model'; registered models:"),
        ("/nonexistent/plugin.py:Thing", "plugin file /nonexistent/plugin.py does not exist"),
        ("json:JSONDecoder", "json:JSONDecoder is not a subclass of singerbench.embedder.Embedder"),
        ("no_such_module_xyz:Thing", "module 'no_such_module_xyz' cannot be imported"),
        ("mfc", "unknown model 'mfc'; did you mean 'mfcc'?"),
    ],
)
def test_bad_model_specs_give_one_clear_line(spec, needle, capsys):
    assert main(["validate", spec]) == 1
    err = capsys.readouterr().err.strip()
    assert needle in err
    assert err.count("\n") == 0


def test_decorator_registers_in_process():
    @register_model("unit-test-model")
    class Tiny(Embedder):
        sample_rate = 8000
        embedding_dim = 2

        def embed(self, batch: torch.Tensor) -> torch.Tensor:
            return torch.stack([batch.mean((1, 2)), batch.std((1, 2))], dim=1)

    assert "unit-test-model" in registered_models()
    assert resolve_model("unit-test-model").embedder.name == "unit-test-model"


def test_invalid_declaration_is_rejected(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text(PLUGIN_SOURCE + "\nclass Bad(BandEnergy):\n    channels = 5\n    input_kind = 'drums'\n")
    with pytest.raises(UserError, match=r"channels must be 1 or 2, got 5; input_kind must be one of"):
        resolve_model(f"{path}:Bad")


def test_builtin_baselines_are_listed(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "mfcc" in out and "speaker" in out and "built-in" in out


def test_entry_point_of_a_separately_installed_package(tmp_path):
    """A real package with its own pyproject, installed with pip into a folder, is found by entry point."""
    pkg = tmp_path / "band_energy_plugin"
    (pkg / "band_energy_plugin").mkdir(parents=True)
    (pkg / "band_energy_plugin" / "__init__.py").write_text(PLUGIN_SOURCE)
    (pkg / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [build-system]
            requires = ["setuptools"]
            build-backend = "setuptools.build_meta"
            [project]
            name = "band-energy-plugin"
            version = "0.1"
            [project.entry-points."singerbench.models"]
            band-energy = "band_energy_plugin:BandEnergy"
            """
        )
    )
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(pkg)],
        check=True,
        capture_output=True,
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run(
        [sys.executable, "-m", "singerbench.cli", "models"], env=env, capture_output=True, text=True, check=True
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("band-energy"))
    assert "entry point of band-energy-plugin" in line and "8000" in line
    check = subprocess.run(
        [sys.executable, "-m", "singerbench.cli", "validate", "band-energy"], env=env, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


def test_a_class_without_name_has_one_name_everywhere(tmp_path):
    """Identity is decided by Embedder.identity(): the store's key, the result and the weights folder agree."""
    from singerbench.pretrained import save_pretrained
    from singerbench.results import ModelInfo
    from singerbench.store import model_identity

    plugin = tmp_path / "nameless.py"
    plugin.write_text(textwrap.dedent(
        '''
        import torch
        from singerbench.embedder import Embedder

        class NoName(Embedder):
            sample_rate = 8000
            embedding_dim = 4

            def embed(self, batch):
                return batch.mean(dim=-1).repeat(1, 4)
        '''
    ))
    model = resolve_model(f"{plugin}:NoName")
    embedder = model.embedder
    assert embedder.plugin_name() == "NoName"
    assert embedder.identity() == {"name": "NoName", "weights_id": "none", "config": {}}
    assert model_identity(embedder)["plugin"] == "NoName"
    assert ModelInfo.from_embedder(embedder, model.spec, model.source).name == "NoName"
    folder = save_pretrained(embedder, tmp_path / "weights")
    assert '"name": "NoName"' in (folder / "config.json").read_text()
