"""Why a score is high, in words a security analyst understands.

The isolation forest says *that* a vector is isolated, not *why*. The model's inputs are how
far each behaviour is above the account's own baseline and above its peers' ("exports in the
last 24 hours, vs peers"); the drivers named here are the behaviours whose inputs are furthest
above what the training baseline showed (in units of the distance from the baseline's median
to its 99th percentile), each with the account's value, its own usual range (its running
baseline, mean +/- 2 standard deviations) and its peers' usual range (their 10th to 99th
percentile). A driver reads "exports
in the last 24 hours: 42 (usually 0-3 for this account; 0-5 for its peers in sales)", never
"exports_24h_vs_peers = 3.1".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from watchdog.anomaly.model import AnomalyModel
from watchdog.anomaly.vocabulary import FEATURE_NAMES, SHARE_FEATURES, WINDOW_FEATURES, to_natural

MAX_DRIVERS = 3

WHAT = {
    "events": "events",
    "subjects": "distinct customers (data subjects) touched",
    "resources": "distinct resources touched",
    "records": "records accessed",
    "bytes": "data volume",
    "exports": "exports, downloads, copies, prints or transfers",
    "external": "sends to outside destinations (removable media, outside e-mail, third "
                "parties, cloud storage)",
    "offhours_share": "share of activity outside business hours",
    "failed_logins": "failed logins",
    "new_resources": "resources this account never touched before",
    "new_categories": "data categories this account never touched before",
    "categories": "distinct data categories touched",
    "sources": "distinct source addresses",
    "new_sources": "source addresses this account never used before",
    "rare_categories": "data categories its peers hardly ever touch",
}
WHEN = {"20m": "in the last 20 minutes", "1h": "in the last hour",
        "24h": "in the last 24 hours", "7d": "in the last 7 days"}

_BASE_OF = {n: n.split("_vs_")[0] for n in FEATURE_NAMES}
_WIN_INDEX = {n: i for i, n in enumerate(WINDOW_FEATURES)}


def _split(feature: str) -> tuple[str, str]:
    base, _, window = feature.rpartition("_")
    return base, window


def fmt(feature: str, value: float) -> str:
    """One value in its unit: '42', '3.1 MB', '65%'."""
    base, _ = _split(feature)
    if feature in SHARE_FEATURES:
        return f"{100 * value:.0f}%"
    if base == "bytes":
        for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
            if value >= size:
                return f"{value / size:.1f} {unit}"
        return f"{value:.0f} B"
    return f"{value:.0f}"


def usual_range(feature: str, mean: float, var: float) -> tuple[float, float]:
    """mean +/- 2 sd on the model's scale, back in natural units (whole counts widened)."""
    sd = math.sqrt(max(var, 0.0))
    lo, hi = mean - 2 * sd, mean + 2 * sd
    if feature in SHARE_FEATURES:
        return max(0.0, lo), min(1.0, hi)
    lo_n, hi_n = math.expm1(max(lo, 0.0)), math.expm1(max(hi, 0.0))
    if _split(feature)[0] == "bytes":
        return lo_n, hi_n
    return float(math.floor(lo_n + 1e-9)), float(math.ceil(hi_n - 1e-9))


def peer_range(feature: str, p10: float, p99: float) -> tuple[float, float]:
    """The peers' 10th to 99th percentile, in natural units (whole counts widened)."""
    lo, hi = to_natural(feature, p10), to_natural(feature, p99)
    if feature in SHARE_FEATURES or _split(feature)[0] == "bytes":
        return lo, hi
    return float(math.floor(lo + 1e-9)), float(math.ceil(hi - 1e-9))


def _rounded(feature: str, v: float) -> float | int:
    if feature in SHARE_FEATURES:
        return round(v, 3)
    return round(v)


def explain(
    model: AnomalyModel,
    x: np.ndarray,
    raw: np.ndarray,
    own_mean: np.ndarray,
    own_var: np.ndarray,
    peer_q: np.ndarray,
    group: str,
    *,
    first: int | None = None,
    cold: bool = False,
) -> tuple[list[dict[str, Any]], str]:
    """(drivers, one-sentence text) for one scored vector ``x`` (model features), its window
    values ``raw`` and the baselines it was compared with. ``first``: the window value the
    tail score alerted on (named first, with how many times beyond the usual it is);
    ``cold``: an account within its warm-up, compared with its peers only."""
    u = model.unusualness(x[None, :])[0]
    best: dict[str, tuple[float, list[str]]] = {}
    for i, name in enumerate(FEATURE_NAMES):
        base = _BASE_OF[name]
        score, signals = best.get(base, (-math.inf, []))
        if u[i] > 1.0:
            signals.append(name)
        best[base] = (max(score, float(u[i])), signals)
    ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))
    chosen = [kv for kv in ranked if kv[1][0] > 1.0][:MAX_DRIVERS] or ranked[:1]
    if first is not None:
        name = WINDOW_FEATURES[first]
        others = [kv for kv in chosen if kv[0] != name][:MAX_DRIVERS - 1]
        chosen = [(name, (best.get(name, (0.0, []))[0], ["tail"])), *others]
    drivers: list[dict[str, Any]] = []
    phrases: list[str] = []
    for feature, (score, signals) in chosen:
        wi = _WIN_INDEX[feature]
        value = to_natural(feature, float(raw[wi]))
        own = usual_range(feature, float(own_mean[wi]), float(own_var[wi]))
        peers = peer_range(feature, float(peer_q[0, wi]), float(peer_q[-1, wi]))
        base, window = _split(feature)
        top = peers[1] if cold else max(own[1], peers[1])
        times = (value + 1.0) / (top + 1.0) if feature not in SHARE_FEATURES else None
        drivers.append({
            "feature": feature,
            "description": f"{WHAT[base]} {WHEN[window]}",
            "value": _rounded(feature, value),
            "account_usual": [_rounded(feature, own[0]), _rounded(feature, own[1])],
            "peers_usual": [_rounded(feature, peers[0]), _rounded(feature, peers[1])],
            "unusualness": round(score, 2),
            "signals": signals or [f"{feature}_vs_self"],
            **({"times_usual": round(times, 1)} if times is not None else {}),
        })
        ratio = ""
        own_typical = to_natural(feature, float(own_mean[wi]))
        if feature not in SHARE_FEATURES and value >= 3 * max(own_typical, 1.0) and not cold:
            ratio = f", {value / max(own_typical, 1.0):.0f}x this account's usual"
        mine = ("a new account" if cold else
                f"usually {fmt(feature, own[0])}-{fmt(feature, own[1])} for this account"
                f"{ratio}")
        # the count the tail score alerted on says how far beyond, however little (its level
        # may be 1.5x); others from 3x
        lead = first is not None and feature == WINDOW_FEATURES[first]
        shown = times is not None and (times >= 3 or (lead and times > 1))
        n = f"{times:.0f}" if times is not None and times >= 3 else f"{times or 0:.1f}"
        beyond = ("" if not shown else f"; {n}x the top of both ranges" if not cold
                  else f"; {n}x its peers' top")
        phrases.append(
            f"{WHAT[base]} {WHEN[window]}: {fmt(feature, value)} ({mine}; "
            f"{fmt(feature, peers[0])}-{fmt(feature, peers[1])} for its peers in {group}"
            f"{beyond})")
    return drivers, "; ".join(phrases)
