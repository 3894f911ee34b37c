"""The model directory: round trip, checksums, feature set, allow-list."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from watchdog.anomaly import skops_forest, store
from watchdog.anomaly.model import fit
from watchdog.anomaly.vocabulary import FEATURE_NAMES, FEATURE_VERSION


def _resum(d: Path) -> None:
    """Rewrite SHA256SUMS as an attacker who also controls it would."""
    names = [line.split("  ", 1)[1] for line in (d / "SHA256SUMS").read_text().splitlines()]
    (d / "SHA256SUMS").write_text("".join(
        f"{hashlib.sha256((d / n).read_bytes()).hexdigest()}  {n}\n" for n in names))


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "model"
    shutil.copytree(src, dst)
    return dst


def test_round_trip(tiny_model: Path) -> None:
    model = store.load(tiny_model)
    doc = json.loads((tiny_model / "manifest.json").read_text())
    assert sorted(p.name for p in tiny_model.iterdir()) == [
        "SHA256SUMS", "manifest.json", "model.skops"]
    assert doc["features"] == list(FEATURE_NAMES)
    assert doc["feature_version"] == FEATURE_VERSION
    assert doc["model_version"] == model.version
    assert model.version.startswith("if-")
    for key in ("scikit-learn", "numpy", "skops"):
        assert doc["library_versions"][key] not in ("", "unknown")
    t = doc["training"]
    assert t["start"] < t["end"]
    assert t["events"] > 0
    assert t["accounts"] == 30
    assert t["train_rows"] > 0
    assert t["heldout_rows"] > 0
    assert doc["threshold"] < doc["threshold_high"]
    assert doc["calibration"]["target_false_alerts_per_1000_accounts_per_day"] == 5.0
    assert doc["peers"]  # departments' baselines, no accounts
    assert "u001" not in (tiny_model / "manifest.json").read_text()
    x = np.random.default_rng(1).uniform(0, 3, (50, len(FEATURE_NAMES)))
    again = store.load(tiny_model)
    assert np.array_equal(model.score(x), again.score(x))
    # the fast path scores exactly as scikit-learn does
    assert np.allclose(model.score(x), -model.estimator.score_samples(x.astype(np.float32)))
    assert (tiny_model / "model.skops").stat().st_size < 2 << 20


def test_tampered_model_file_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    d = _copy(tiny_model, tmp_path)
    raw = bytearray((d / "model.skops").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (d / "model.skops").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"checksum mismatch for model\.skops"):
        store.load(d)


def test_tampered_manifest_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    d = _copy(tiny_model, tmp_path)
    doc = json.loads((d / "manifest.json").read_text())
    doc["threshold"] = 99.0
    (d / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"checksum mismatch for manifest\.json") as err:
        store.load(d)
    assert "\n" not in str(err.value)


def test_missing_checksums_are_refused(tiny_model: Path, tmp_path: Path) -> None:
    d = _copy(tiny_model, tmp_path)
    (d / "SHA256SUMS").unlink()
    with pytest.raises(ValueError, match="no SHA256SUMS"):
        store.load(d)


def test_different_feature_set_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    d = _copy(tiny_model, tmp_path)
    doc = json.loads((d / "manifest.json").read_text())
    doc["features"] = [*doc["features"][:-1], "keystrokes_1h_vs_self"]
    (d / "manifest.json").write_text(json.dumps(doc))
    _resum(d)  # consistent checksums: still the wrong features
    with pytest.raises(ValueError, match="different feature set") as err:
        store.load(d)
    assert "retrain" in str(err.value)


def test_different_feature_version_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    d = _copy(tiny_model, tmp_path)
    doc = json.loads((d / "manifest.json").read_text())
    doc["feature_version"] = FEATURE_VERSION - 1
    (d / "manifest.json").write_text(json.dumps(doc))
    _resum(d)
    with pytest.raises(ValueError, match="different feature set"):
        store.load(d)


class Sneaky:
    """Not an estimator: a type no allow-list names."""

    def __init__(self) -> None:
        self.payload = "rm -rf /"


def test_types_outside_the_allow_list_are_refused(tiny_model: Path, tmp_path: Path) -> None:
    import skops.io as sio

    d = _copy(tiny_model, tmp_path)
    sio.dump(Sneaky(), d / "model.skops")
    _resum(d)
    with pytest.raises(ValueError, match="outside the allow-list"):
        store.load(d)


def test_not_a_model_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such directory"):
        store.load(tmp_path / "nowhere")
    (tmp_path / "junk").mkdir()
    with pytest.raises(ValueError, match="SHA256SUMS"):
        store.load(tmp_path / "junk")


def test_zscore_round_trip_and_overwrite(tmp_path: Path) -> None:
    x = np.abs(np.random.default_rng(0).normal(0, 1, (500, len(FEATURE_NAMES))))
    model = fit(x, FEATURE_NAMES, kind="zscore")
    model.threshold, model.threshold_high = 4.0, 6.0
    out = tmp_path / "z"
    store.save(model, out, {"training": {"end": "2026-11-20T00:00:00Z"}})
    again = store.load(out)
    assert again.kind == "zscore"
    assert again.version.startswith("z-20261120-")
    assert np.allclose(model.score(x[:10]), again.score(x[:10]))
    store.save(model, out, {"training": {"end": "2026-11-21T00:00:00Z"}})  # replaces it
    assert store.load(out).version.startswith("z-20261121-")
    assert [p.name for p in tmp_path.iterdir()] == ["z"]  # no temporary left behind


def test_loading_needs_neither_scikit_learn_nor_skops(tiny_model: Path) -> None:
    """The trees are read straight from the archive (both libraries take about two seconds to
    import and rebuild the estimator at every start); scoring then imports neither."""
    code = ("import sys, numpy as np\n"
            "from watchdog.anomaly import store\n"
            f"m = store.load({str(tiny_model)!r})\n"
            "assert m.forest is not None\n"
            "m.score(np.ones((3, len(m.features))))\n"
            "print(sorted(k for k in sys.modules if k.split('.')[0] in ('sklearn', 'skops')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"


def test_forest_read_from_the_archive_scores_as_the_estimator(tiny_model: Path) -> None:
    model = store.load(tiny_model)
    assert model.forest is not None
    rng = np.random.default_rng(3)
    x = np.ascontiguousarray(rng.uniform(0, 3, (300, len(FEATURE_NAMES))), np.float32)
    x[rng.random(x.shape) < 0.6] = 0.0
    # the estimator is loaded when asked for (skops, allow-list), and agrees bit for bit
    assert np.array_equal(model.score(x), -model.estimator.score_samples(x))


def test_an_archive_that_does_not_check_out_is_left_to_skops(tiny_model: Path,
                                                             tmp_path: Path) -> None:
    """Path lengths that the trees' shapes do not give: not read as arrays; skops loads the
    estimator (allow-list and all) and scoring goes through it, as before."""
    d = _copy(tiny_model, tmp_path)
    with zipfile.ZipFile(d / "model.skops") as z:
        files = {n: z.read(n) for n in z.namelist()}
    schema = json.loads(files["schema.json"])
    lengths = schema["content"]["content"]["_decision_path_lengths"]["content"]
    name = lengths[0]["file"]
    with zipfile.ZipFile(d / "model.skops") as z:
        depth = np.load(io.BytesIO(z.read(name)))
    buf = io.BytesIO()
    np.save(buf, depth + 1)
    files[name] = buf.getvalue()
    with zipfile.ZipFile(d / "model.skops", "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    assert skops_forest.read_forest(d / "model.skops", len(FEATURE_NAMES)) is None
    _resum(d)
    model = store.load(d)
    assert model.forest is None
    x = np.ascontiguousarray(np.random.default_rng(4).uniform(0, 3, (20, len(FEATURE_NAMES))),
                             np.float32)
    assert np.array_equal(model.score(x), -model.estimator.score_samples(x))


def test_the_estimator_loaded_later_is_the_one_verified(tiny_model: Path,
                                                        tmp_path: Path) -> None:
    d = _copy(tiny_model, tmp_path)
    model = store.load(d)
    raw = bytearray((d / "model.skops").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (d / "model.skops").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="changed after the model was loaded"):
        model.estimator  # noqa: B018
    assert model.score(np.zeros((1, len(FEATURE_NAMES)))).shape == (1,)  # still scores
