"""The model directory: what ``watchdog train`` writes and ``--model`` loads.

::

    MODEL_DIR/
      manifest.json   feature names and order, feature version, library versions, training
                      period and sizes, threshold and calibration, peer baselines, version
      model.skops     the estimator, in skops' format (no pickle; isolation forest only)
      SHA256SUMS      sha256sum(1) lines for the two files above

Loading verifies every checksum *before* anything is parsed, refuses a manifest whose feature
set is not the one this code computes, and reads the trees' arrays straight from the archive
(:mod:`~watchdog.anomaly.skops_forest`: JSON and ``.npy`` files, nothing constructed; about
0.1 s where importing scikit-learn and skops and rebuilding the estimator take about 2 s at
every start).
The estimator itself is loaded, with skops restricted to an allow-list of types (an
IsolationForest is made of trees and nothing else), when it is asked for, or at once if the
archive is not laid out as expected. Every refusal is a ``ValueError`` whose text is one line
saying what is wrong and what to do.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import zipfile
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from watchdog.anomaly.model import (
    KINDS,
    QUANTILES,
    AnomalyModel,
)
from watchdog.anomaly.skops_forest import TRUSTED_TYPES, read_forest
from watchdog.anomaly.vocabulary import FEATURE_NAMES, FEATURE_VERSION, TAIL_COLS

FORMAT = "watchdog-anomaly/1"
MANIFEST = "manifest.json"
MODEL_FILE = "model.skops"
SUMS = "SHA256SUMS"
MAX_BYTES = 64 << 20  # a model directory file larger than this is not ours


def library_versions() -> dict[str, str]:
    out = {}
    for dist in ("scikit-learn", "numpy", "skops", "watchdog-privacy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _floats(a: np.ndarray | None) -> list[Any] | None:
    return None if a is None else np.round(np.asarray(a, dtype=np.float64), 6).tolist()


def save(model: AnomalyModel, out_dir: str | Path, manifest: dict[str, Any]) -> Path:
    """Write ``model`` with ``manifest`` (training facts) into ``out_dir``; returns it.

    Files are written into a temporary directory beside ``out_dir`` and then moved into
    place, so a reader never sees a half-written model.
    """
    import skops.io as sio

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)  # readable by the service account that runs the daemon
    files = [MANIFEST]
    if model.kind == "isolation_forest":
        sio.dump(model.estimator, tmp / MODEL_FILE, compression=zipfile.ZIP_DEFLATED,
                 compresslevel=9)
        files.append(MODEL_FILE)
        digest = _sha256(tmp / MODEL_FILE)
    else:
        params = json.dumps([_floats(model.center), _floats(model.scale)]).encode()
        digest = hashlib.sha256(params).hexdigest()
    trained_to = manifest.get("training", {}).get("end", "")[:10].replace("-", "")
    model.version = f"{'if' if model.kind == 'isolation_forest' else 'z'}-" \
                    f"{trained_to or 'untimed'}-{digest[:10]}"
    doc = {
        "format": FORMAT,
        "model_version": model.version,
        "kind": model.kind,
        "feature_version": FEATURE_VERSION,
        "features": list(model.features),
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "library_versions": library_versions(),
        "threshold": round(model.threshold, 6),
        "threshold_high": round(model.threshold_high, 6),
        **({"tail_threshold": round(model.tail_threshold, 6)}
           if math.isfinite(model.tail_threshold) else {}),
        **({"tail_levels": [round(float(v), 6) for v in model.tail_levels]}
           if model.tail_levels is not None else {}),
        "quantiles": {"levels": list(QUANTILES), "values": _floats(model.quantiles)},
        **({"zscore": {"center": _floats(model.center), "scale": _floats(model.scale)}}
           if model.kind == "zscore" else {}),
        **manifest,
    }
    (tmp / MANIFEST).write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    (tmp / SUMS).write_text("".join(f"{_sha256(tmp / f)}  {f}\n" for f in files))
    model.info = doc
    if out.exists():
        if not (out / MANIFEST).exists() and any(out.iterdir()):
            raise ValueError(f"{out}: exists and is not a model directory; not overwriting")
        old = out.with_name(f".{out.name}.old.{os.getpid()}")
        out.rename(old)
        tmp.rename(out)
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    else:
        tmp.rename(out)
    return out


def _verify(d: Path) -> dict[str, str]:
    """Check SHA256SUMS before anything is parsed; returns the files it covers (digests)."""
    sums = d / SUMS
    if not sums.is_file():
        raise ValueError(f"model {d}: no {SUMS} file; refusing an unverifiable model "
                         "(retrain it with `watchdog train`)")
    listed: dict[str, str] = {}
    for line in sums.read_text().splitlines():
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name or "/" in name or name.startswith("."):
            raise ValueError(f"model {d}: {SUMS} is malformed")
        listed[name] = digest
    if MANIFEST not in listed:
        raise ValueError(f"model {d}: {SUMS} does not cover {MANIFEST}")
    for name, digest in listed.items():
        p = d / name
        if not p.is_file():
            raise ValueError(f"model {d}: {name} is missing")
        if p.stat().st_size > MAX_BYTES:
            raise ValueError(f"model {d}: {name} is larger than {MAX_BYTES >> 20} MB")
        if _sha256(p) != digest:
            raise ValueError(f"model {d}: checksum mismatch for {name}: the file was changed "
                             "or damaged after training; refusing it")
    return listed


def load(model_dir: str | Path) -> AnomalyModel:
    """Verify and load a model directory (``default``: the packaged model); ``ValueError``
    (one line) if it is not usable."""
    from watchdog.packaged import resolve_model

    d = resolve_model(model_dir)
    if not d.is_dir():
        raise ValueError(f"model {d}: no such directory")
    covered = _verify(d)
    try:
        doc = json.loads((d / MANIFEST).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"model {d}: {MANIFEST} is unreadable: {err}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"model {d}: not a {FORMAT} model directory")
    kind = doc.get("kind")
    if kind not in KINDS:
        raise ValueError(f"model {d}: unknown model kind {kind!r}")
    features = tuple(doc.get("features") or ())
    if features != FEATURE_NAMES or doc.get("feature_version") != FEATURE_VERSION:
        missing = [f for f in FEATURE_NAMES if f not in features]
        extra = [f for f in features if f not in FEATURE_NAMES]
        what = (f"missing {', '.join(missing[:3])}" if missing else
                f"unknown {', '.join(extra[:3])}" if extra else
                "same names in another order or meaning")
        raise ValueError(
            f"model {d}: trained on a different feature set ({len(features)} features, "
            f"version {doc.get('feature_version')}) than this watchdog computes "
            f"({len(FEATURE_NAMES)}, version {FEATURE_VERSION}; {what}): retrain it with "
            "`watchdog train`")
    try:
        threshold = float(doc["threshold"])
        threshold_high = float(doc["threshold_high"])
        tail_threshold = float(doc.get("tail_threshold", math.inf))
        if not tail_threshold > 0:
            raise ValueError
        levels = doc.get("tail_levels")
        tail_levels = None if levels is None else np.asarray(levels, dtype=np.float64)
        if tail_levels is not None and (tail_levels.shape != TAIL_COLS.shape
                                        or not np.all(tail_levels > 0)
                                        or not np.all(np.isfinite(tail_levels))):
            raise ValueError
        q = doc["quantiles"]["values"]
        quantiles = np.asarray(q, dtype=np.float64) if q is not None else None
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"model {d}: {MANIFEST} lacks a usable threshold") from None
    model = AnomalyModel(kind, features, threshold=threshold, threshold_high=threshold_high,
                         tail_threshold=tail_threshold, tail_levels=tail_levels,
                         quantiles=quantiles, info=doc,
                         version=str(doc.get("model_version", "unknown")))
    if kind == "isolation_forest":
        if MODEL_FILE not in covered:
            raise ValueError(f"model {d}: {SUMS} does not cover {MODEL_FILE}")
        path, n = d / MODEL_FILE, len(features)
        forest = read_forest(path, n)
        if forest is None:  # not laid out as expected: skops builds the estimator, or refuses
            model.estimator = _load_estimator(path, n)
        else:  # scoring needs the trees only; the estimator itself when asked for
            model.forest = forest
            model.estimator_loader = partial(_load_estimator, path, n, covered[MODEL_FILE])
    else:
        z = doc.get("zscore") or {}
        try:
            model.center = np.asarray(z["center"], dtype=np.float32)
            model.scale = np.asarray(z["scale"], dtype=np.float32)
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"model {d}: z-score parameters missing") from None
        if model.center.shape != (len(features),) or model.scale.shape != (len(features),):
            raise ValueError(f"model {d}: z-score parameters do not match the features")
    return model


def claimed_version(model_dir: str | Path) -> str:
    """The version a (possibly refused) directory claims, for metrics; never raises."""
    try:
        from watchdog.packaged import resolve_model

        doc = json.loads((resolve_model(model_dir) / MANIFEST).read_text())
        return str(doc.get("model_version", "unknown"))[:100]
    except Exception:  # a refused model may be anything
        return "unknown"


def _load_estimator(path: Path, n_features: int, digest: str | None = None) -> Any:
    """The IsolationForest in ``path``, by skops with the allow-list (``digest``: checked
    again first, for a file verified earlier)."""
    import skops.io as sio
    from sklearn.ensemble import IsolationForest

    if digest is not None and _sha256(path) != digest:
        raise ValueError(f"model {path.parent}: checksum mismatch for {path.name}: the file "
                         "was changed after the model was loaded; refusing it")

    try:
        untrusted = set(sio.get_untrusted_types(file=path))
    except Exception as err:  # skops raises a variety of errors on a damaged archive
        raise ValueError(f"model {path.parent}: {path.name} is not a skops file: {err}") from None
    unknown = sorted(untrusted - TRUSTED_TYPES)
    if unknown:
        raise ValueError(f"model {path.parent}: {path.name} contains types outside the "
                         f"allow-list ({', '.join(unknown[:3])}); refusing it")
    try:
        est = sio.load(path, trusted=sorted(untrusted))
    except Exception as err:
        raise ValueError(f"model {path.parent}: cannot load {path.name}: {err}") from None
    if not isinstance(est, IsolationForest):
        raise ValueError(f"model {path.parent}: {path.name} is not an IsolationForest")
    if getattr(est, "n_features_in_", None) != n_features:
        raise ValueError(f"model {path.parent}: the estimator expects "
                         f"{getattr(est, 'n_features_in_', '?')} features, the manifest "
                         f"names {n_features}")
    return est
