from __future__ import annotations

import pytest

from auditkit.core.settings import AuditConfig
from auditkit.contract.errors import ConfigError


def test_auditkit_toml_and_relative_paths(tmp_path):
    (tmp_path / "auditkit.toml").write_text(
        'rater = "models/r.pt"\nclips = "clips"\nperturbations = ["lighting:dim"]\n'
        'alpha = 0.01\ncorrection = "bh"\n[margin]\nopenness = 0.1\ndefault = 0.05\n')
    config = AuditConfig.discover(tmp_path)
    assert config.rater == str(tmp_path / "models/r.pt")
    assert config.clips == str(tmp_path / "clips")
    assert config.perturbations == ("lighting:dim",) and config.alpha == 0.01
    assert config.margin == {"openness": 0.1, "default": 0.05}
    assert config.override(alpha=None, seed=3).seed == 3


@pytest.mark.parametrize("rater,expected", [
    ("http:vendor.toml", "http:{base}/vendor.toml"),       # a description file beside the config
    ("https://api.example/score", "https://api.example/score"),  # a URL is not a path
    ("builtin:constant", "builtin:constant"),
])
def test_http_rater_description_is_relative_to_the_config_file(tmp_path, rater, expected):
    (tmp_path / "auditkit.toml").write_text(f'rater = "{rater}"\n')
    assert AuditConfig.discover(tmp_path).rater == expected.format(base=tmp_path)


@pytest.mark.parametrize("text,message", [
    ("executor = 'dask'", "executor must be one of local, ray"),
    ("workers = -1", "workers must be an integer >= 0"),
    ("executor = 'ray'\nworkers = 0", "workers must be an integer >= 1"),
    ("ray_address = ''", "ray_address must be a non-empty string"),
])
def test_executor_settings_are_checked(tmp_path, text, message):
    (tmp_path / "auditkit.toml").write_text(text + "\n")
    with pytest.raises(ConfigError, match=message):
        AuditConfig.discover(tmp_path)


def test_pyproject_table(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[tool.auditkit]\nrater = "builtin:constant"\nperturbations = "lighting"\n')
    config = AuditConfig.discover(tmp_path)
    assert config.rater == "builtin:constant" and config.perturbations == ("lighting",)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert AuditConfig.discover(tmp_path) is None


@pytest.mark.parametrize("text,message", [
    ("alpha = 2", "alpha must be a number between 0 and 0.5, got 2"),
    ("margin = -1", "margin must be a positive number"),
    ("[margin]\nopenness = 'wide'", "margin.openness must be a positive number"),
    ("correction = 'fdr'", "correction must be one of holm, bh, bonferroni, none"),
    ("batch_size = 0", "batch_size must be an integer >= 1"),
    ("perturbations = []", "perturbations must be a non-empty list"),
    ("colour = 'red'", "unknown key 'colour'"),
    ("rater = ", "not valid TOML"),
])
def test_bad_values_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "auditkit.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=message) as info:
        AuditConfig.from_file(path)
    assert str(path) in str(info.value)


def test_missing_file_and_missing_table(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        AuditConfig.from_file(tmp_path / "nope.toml")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    with pytest.raises(ConfigError, match=r"has no \[tool.auditkit\] table"):
        AuditConfig.from_file(tmp_path / "pyproject.toml")
