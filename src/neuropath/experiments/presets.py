"""Presets: YAML files of flat ``key: value`` settings for the paper's runs.

They ship inside the package (``neuropath/presets/*.yaml``) so that an installed
neuropath finds them; ``--preset`` also accepts a path to a YAML file of one's own.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..errors import UsageError
from ..training.config import Config


def preset_dir() -> Path:
    return Path(str(resources.files("neuropath") / "presets"))


def list_presets() -> dict[str, str]:
    """name → first comment line (its description)."""
    out = {}
    for path in sorted(preset_dir().glob("*.yaml")):
        first = path.read_text().splitlines()[0] if path.read_text() else ""
        out[path.stem] = first.lstrip("# ").strip()
    return out


def preset_values(name: str) -> dict[str, Any]:
    path = Path(name)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = preset_dir() / f"{name}.yaml"
    if not path.is_file():
        raise UsageError(f"unknown preset {name!r}; available: {', '.join(list_presets())} "
                         "(or a path to a .yaml file)")
    return _settings_yaml(path, "preset")


def _settings_yaml(path: Path, what: str) -> dict[str, Any]:
    """A YAML file of settings as a mapping; a file that is not one ends in one line naming ``what`` it was."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UsageError(f"{what} {str(path)!r} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{what} {str(path)!r} must be a mapping of settings")
    return data


def config_file_values(path: str | Path) -> dict[str, Any]:
    """The settings of a run's ``config.yaml`` (or any YAML of settings) to start a new run from: the version
    line and the run directory are dropped (the new run gets its own folder unless ``--run-dir``), settings
    a run written before they existed ran with are filled in (`fill_legacy`)."""
    from ..training.config import fill_legacy
    path = Path(path)
    if path.is_dir():
        path = path / "config.yaml"
    if not path.is_file():
        raise UsageError(f"--config: no such file {str(path)!r} (a run's config.yaml, or its run directory)")
    data = _settings_yaml(path, "--config")
    data.pop("neuropath", None)
    data.pop("run_dir", None)
    if isinstance(data.get("run"), dict):
        data["run"].pop("run_dir", None)
    return fill_legacy(data)


def load_preset(name: str, **overrides: Any) -> Config:
    """A `Config` from a preset, then ``overrides`` (flat field names) on top."""
    return Config().set(preset_values(name)).set(overrides)
