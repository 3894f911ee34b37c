"""Files shipped inside the wheel: the example config and the default anomaly model.

Located through the import system (not the source tree), so that ``watchdog config example``
and ``--model default`` work the same from a checkout, a venv, ``pipx`` or the container.
"""

from __future__ import annotations

from pathlib import Path

_ROOT = Path(__file__).resolve().parent

#: what ``--model default`` / ``model: default`` names (a directory named ``default`` in the
#: working directory is still reachable as ``./default``)
DEFAULT_MODEL_NAME = "default"


def example_config() -> Path:
    """The commented example of ``watchdog.yaml`` (every key, its default)."""
    return _ROOT / "daemon" / "watchdog.example.yaml"


def default_model() -> Path:
    """The anomaly model trained on the simulator (retrain on your own baseline)."""
    return _ROOT / "models" / "default"


def policy_packs() -> Path:
    """The embedded default policy and the seed companies' policy packs."""
    return _ROOT / "policies"


def resolve_model(model: str | Path) -> Path:
    """``model`` as a directory: the name ``default`` is the packaged model."""
    if str(model) == DEFAULT_MODEL_NAME:
        return default_model()
    return Path(model)
