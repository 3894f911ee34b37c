"""The detection envelope: recall as a heat map over intensity x duration, per family (columns)
and detector (rows). Each cell says found/cases; an empty cell had no case."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.anomaly_eval.score import Outcome
from watchdog.simulate.drawn import FAMILIES
from watchdog.simulate.drawn.params import LONG

INTENSITY = (1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0)
MINUTES = (20.0, 40.0, 60.0, 120.0, 240.0, 480.0)
WORKDAYS = (3, 5, 8, 11, 16)


def _edges(family: str) -> tuple[float, ...]:
    return tuple(float(x) for x in (WORKDAYS if family in LONG else MINUTES))


def _length(o: Outcome) -> float:
    return float(o.case.workdays) if o.case.family in LONG else o.case.duration_ms / 60_000


def grid(outcomes: Sequence[Outcome], family: str) -> tuple[np.ndarray, np.ndarray]:
    """(found, cases) per (duration bin, intensity bin)."""
    d_edges = _edges(family)
    found = np.zeros((len(d_edges) - 1, len(INTENSITY) - 1))
    cases = np.zeros_like(found)
    for o in outcomes:
        if o.case.family != family:
            continue
        i = int(np.clip(np.searchsorted(INTENSITY, o.case.intensity, "right") - 1, 0,
                        len(INTENSITY) - 2))
        j = int(np.clip(np.searchsorted(d_edges, _length(o), "right") - 1, 0,
                        len(d_edges) - 2))
        cases[j, i] += 1
        found[j, i] += o.found
    return found, cases


def envelope_doc(by_detector: Mapping[str, Sequence[Outcome]]) -> dict[str, Any]:
    """The heat maps' numbers (for the JSON and the note)."""
    doc: dict[str, Any] = {"intensity_edges": list(INTENSITY)}
    for det, outs in by_detector.items():
        doc[det] = {}
        for fam in FAMILIES:
            f, n = grid(outs, fam)
            doc[det][fam] = {"duration_edges": list(_edges(fam)),
                             "duration_unit": "working days" if fam in LONG else "minutes",
                             "found": f.astype(int).tolist(), "cases": n.astype(int).tolist()}
    return doc


def draw(by_detector: Mapping[str, Sequence[Outcome]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dets = list(by_detector)
    fig, axes = plt.subplots(len(dets), len(FAMILIES), figsize=(4.2 * len(FAMILIES),
                                                               3.2 * len(dets) + 0.8),
                             squeeze=False, layout="constrained")
    img = None
    for r, det in enumerate(dets):
        for c, fam in enumerate(FAMILIES):
            ax = axes[r][c]
            found, cases = grid(by_detector[det], fam)
            recall = np.where(cases > 0, found / np.maximum(cases, 1), np.nan)
            img = ax.imshow(recall, origin="lower", cmap="RdYlGn", vmin=0, vmax=1,
                            aspect="auto")
            for (j, i), n in np.ndenumerate(cases):
                if n:
                    ax.text(i, j, f"{int(found[j, i])}/{int(n)}", ha="center", va="center",
                            fontsize=7)
            d_edges = _edges(fam)
            ax.set_xticks(np.arange(len(INTENSITY)) - 0.5,
                          [f"{x:g}x" for x in INTENSITY], fontsize=7)
            unit = "d" if fam in LONG else "m"
            ax.set_yticks(np.arange(len(d_edges)) - 0.5, [f"{x:g}{unit}" for x in d_edges],
                          fontsize=7)
            ax.set_title(f"{det}: {fam}", fontsize=9)
            if r == len(dets) - 1:
                ax.set_xlabel("intensity (x the account's usual)", fontsize=8)
            if c == 0:
                ax.set_ylabel("duration (minutes / working days)", fontsize=8)
    if img is not None:
        fig.colorbar(img, ax=axes, shrink=0.6, label="recall")
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
