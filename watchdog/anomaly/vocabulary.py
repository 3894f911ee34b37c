"""The feature vocabulary: the time grid, the window values' names, the model's inputs' names
and version, and the units each is kept in.

A window value describes an account's last hour or last 24 hours of event time (one of
:data:`BASE` per window). The model sees a selection of them (:data:`MODEL_FEATURES`), each
relative to the account's own history or to its peers; :data:`FEATURE_VERSION` says when a
feature's meaning changed without its name changing (a model trained on another version is
refused).
"""

from __future__ import annotations

import math

import numpy as np

BUCKET = 600  # seconds per bucket of the 1-hour window
SCORING_WINDOW = 1200  # seconds: the stage scores an account's latest vector per window
PER_HOUR = 3600 // BUCKET
SLOTS_1H = PER_HOUR  # 10-minute buckets
SLOTS_24H = 24  # 1-hour buckets
WINDOW_BUCKETS = {"1h": SLOTS_1H, "24h": SLOTS_24H * PER_HOUR}

# window values and the model's inputs -----------------------------------------------------
BASE = (
    "events", "subjects", "resources", "records", "bytes", "exports", "external",
    "offhours_share", "failed_logins", "new_resources", "new_categories", "categories",
    "sources", "new_sources", "rare_categories",
)
WINDOWS = ("1h", "24h")
WINDOW_FEATURES = tuple(f"{b}_{w}" for w in WINDOWS for b in BASE)
# Every window feature is computed relative to the account's own history (``rel_self``: how many
# standard deviations above its running baseline, beyond the first) and to its peers
# (``rel_peer``: how far beyond the peers' 99th percentile), upward only: insiders do more, or new
# things; a quiet hour is not a threat. The model sees a compact selection: an isolation forest
# dilutes a clear signal in one behaviour across every other dimension in which ordinary hours are
# occasionally rare, so each behaviour family appears once or twice, mostly against the peers
# (activity, breadth, volume, exports, outside destinations, off-hours, failed logins, novelty,
# categories the peers hardly touch) and for the three behaviours whose change over the account's
# own history matters most (activity, exports, new addresses). All of them stay available to the
# explanation.
MODEL_FEATURES: tuple[tuple[str, str], ...] = (
    ("events_1h", "peers"), ("events_24h", "peers"), ("subjects_1h", "peers"),
    ("bytes_1h", "peers"), ("exports_1h", "peers"), ("exports_24h", "peers"),
    ("external_1h", "peers"), ("offhours_share_1h", "peers"), ("failed_logins_1h", "peers"),
    ("new_resources_1h", "peers"), ("new_categories_1h", "peers"), ("new_sources_1h", "peers"),
    ("rare_categories_1h", "peers"), ("rare_categories_24h", "peers"),
    ("events_1h", "self"), ("exports_24h", "self"), ("new_sources_1h", "self"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f"{w}_vs_{k}" for w, k in MODEL_FEATURES)
# Bump when the meaning of a feature changes without its name changing.
FEATURE_VERSION = 6

NW = len(WINDOW_FEATURES)
SHARE_FEATURES = frozenset(f"offhours_share_{w}" for w in WINDOWS)  # not log-scaled
LOGGED = np.array([n not in SHARE_FEATURES for n in WINDOW_FEATURES])
# the smallest spread a baseline is credited with: log units, or a share for the shares
FLOOR = np.where(LOGGED, 0.5, 0.15)
PEER_SCALE = np.where(LOGGED, 1.0, 10.0)  # onto the peers' histogram bins

EXPORT_ACTIONS = frozenset({"export", "download", "copy", "print", "transfer"})
CATEGORIES = (
    "identity", "contact", "address", "payment", "my_number", "location", "purchase",
    "behavior", "device", "health", "preferences", "employment", "minor", "credentials",
)


def to_natural(name: str, value: float) -> float:
    """A window value in its own units (count, bytes, share) from its log scale."""
    if name in SHARE_FEATURES:
        return value
    return math.expm1(value)
