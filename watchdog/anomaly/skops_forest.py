"""The forest's arrays read straight from a skops archive, without scikit-learn.

skops' format is a zip of ``schema.json`` (the object tree, each node naming its type) and
one ``.npy`` file per array. Scoring needs the trees' node arrays and a few per-tree arrays
only; reading them directly costs a few tens of milliseconds, where importing scikit-learn
and skops and rebuilding the estimator costs about two seconds at every start. Nothing is
constructed from the archive (arrays are read with allow_pickle=False); an archive naming
any type beyond the allow-list (:data:`TRUSTED_TYPES`) and skops' plain containers, or laid
out otherwise, is left to skops (which loads or refuses it as before).
"""

from __future__ import annotations

import ast
import io
import json
import math
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from watchdog.anomaly.model import Forest, _FastForest, average_path_length

# The only types a stored IsolationForest may contain beyond skops' own safe defaults.
TRUSTED_TYPES = frozenset({
    "sklearn.ensemble._iforest.IsolationForest",
    "sklearn.tree._classes.ExtraTreeRegressor",
    "sklearn.tree._tree.Tree",
    "numpy.random._pcg64.PCG64",
    "numpy.random._generator.Generator",
    "numpy.random.mtrand.RandomState",
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.int64",
    "numpy.float64",
    "builtins.slice",
})


_CONTAINERS = frozenset({"builtins.dict", "builtins.list", "builtins.tuple", "builtins.str",
                         "builtins.int", "builtins.float", "builtins.bool"})
_NODE_FIELDS = ("left_child", "right_child", "feature", "threshold", "n_node_samples")


_TYPE = re.compile(rb'"__class__":\s*"([^"\\]*)",\s*"__module__":\s*"([^"\\]*)"')
_NPY_SHAPE = re.compile(r"'shape':\s*\(([0-9, ]*)\)")


def _types(text: bytes) -> set[str] | None:
    """Every type the schema names (None if some are not written as skops writes them)."""
    found = _TYPE.findall(text)
    if len(found) != text.count(b'"__class__"'):
        return None
    return {f"{m.decode()}.{c.decode()}" for c, m in found}


class _Npy:
    """``.npy`` files of one archive: the header's dtype parsed once per layout."""

    def __init__(self) -> None:
        self.dtypes: dict[str, np.dtype[Any]] = {}

    def load(self, raw: bytes) -> np.ndarray:
        if raw[:6] != b"\x93NUMPY" or raw[6] not in (1, 2, 3):
            raise ValueError("not a .npy file")
        size = 2 if raw[6] == 1 else 4
        start = 8 + size
        end = start + int.from_bytes(raw[8:start], "little")
        header = raw[start:end].decode("latin1")
        shape_at = _NPY_SHAPE.search(header)
        if shape_at is None or "'fortran_order': False" not in header:
            arr: np.ndarray = np.load(io.BytesIO(raw), allow_pickle=False)
            return arr
        layout = header[:shape_at.start()] + header[shape_at.end():]
        dtype = self.dtypes.get(layout)
        if dtype is None:
            dtype = self.dtypes[layout] = np.lib.format.descr_to_dtype(
                ast.literal_eval(header)["descr"])
            if dtype.hasobject:
                raise ValueError("object arrays are not read")
        shape = tuple(int(v) for v in shape_at.group(1).split(",") if v.strip())
        count = math.prod(shape)
        return np.frombuffer(raw, dtype, count, end).reshape(shape)


def read_forest(path: Path, n_features: int) -> Forest | None:
    """The IsolationForest in skops file ``path`` as a :class:`Forest` (None: let skops load
    it). The arrays are checked against each other: every per-node path length must be what
    the tree's shape and node sample counts give, as scikit-learn computes it at fit time."""
    try:
        with zipfile.ZipFile(path) as z:
            text = z.read("schema.json")
            types = _types(text)
            if types is None or not types <= TRUSTED_TYPES | _CONTAINERS:
                return None
            schema = json.loads(text)
            npy = _Npy()

            def node(n: Any, loader: str, cls: str | None = None) -> Any:
                if not isinstance(n, dict) or n.get("__loader__") != loader or (
                        cls is not None and f"{n.get('__module__')}.{n.get('__class__')}" != cls):
                    raise ValueError(f"unexpected {loader}")
                return n

            def value(n: Any) -> Any:
                return json.loads(node(n, "JsonNode")["content"])

            def array(n: Any) -> np.ndarray:
                name = node(n, "NdArrayNode", "numpy.ndarray")["file"]
                if n.get("type") != "numpy" or not isinstance(name, str) or "/" in name:
                    raise ValueError("unexpected array")
                return npy.load(z.read(name))

            def items(n: Any, loader: str) -> list[Any]:
                got = node(n, loader)["content"]
                if not isinstance(got, list):
                    raise ValueError(f"unexpected {loader}")
                return got

            top = node(schema, "ObjectNode", "sklearn.ensemble._iforest.IsolationForest")
            attrs = node(top["content"], "DictNode")["content"]
            if value(attrs["n_features_in_"]) != n_features:
                return None
            trees = items(attrs["estimators_"], "ListNode")
            feats = [array(f) for f in items(attrs["estimators_features_"], "ListNode")]
            depths = [array(a) for a in items(attrs["_decision_path_lengths"], "TupleNode")]
            rests = [array(a) for a in items(attrs["_average_path_length_per_tree"],
                                             "TupleNode")]
            max_samples = value(attrs["_max_samples"])
            if not (len(trees) == len(feats) == len(depths) == len(rests) > 0
                    and isinstance(max_samples, int) and max_samples > 0):
                return None
            left, right, feature, threshold, features, lengths = [], [], [], [], [], []
            counts: list[np.ndarray] = []
            for t, f, depth, rest in zip(trees, feats, depths, rests, strict=True):
                est = node(t, "ObjectNode", "sklearn.tree._classes.ExtraTreeRegressor")
                tree = node(node(est["content"], "DictNode")["content"]["tree_"], "TreeNode",
                            "sklearn.tree._tree.Tree")
                state = node(tree["content"], "DictNode")["content"]
                nodes = array(state["nodes"])
                if (nodes.ndim != 1 or nodes.dtype.names is None
                        or not set(_NODE_FIELDS) <= set(nodes.dtype.names)
                        or value(state["node_count"]) != len(nodes)
                        or depth.shape != rest.shape != nodes.shape):
                    return None
                lc = nodes["left_child"].astype(np.int64)
                rc = nodes["right_child"].astype(np.int64)
                samples = nodes["n_node_samples"].astype(np.int64)
                if (not np.array_equal(depth, _node_depths(lc, rc))
                        or f.ndim != 1 or not np.all((f >= 0) & (f < n_features))):
                    return None
                counts.append(samples)
                left.append(lc)
                right.append(rc)
                feature.append(nodes["feature"].astype(np.int64))
                threshold.append(nodes["threshold"].astype(np.float64))
                features.append(None if len(f) == n_features
                                and np.array_equal(f, np.arange(n_features))
                                else f.astype(np.int64))
                lengths.append(np.asarray(depth, dtype=np.float64)
                               + np.asarray(rest, dtype=np.float64) - 1.0)
            # elementwise, so all trees' nodes at once give each its own numbers
            if not np.array_equal(np.concatenate(rests),
                                  average_path_length(np.concatenate(counts))):
                return None
            forest = Forest(left, right, feature, threshold, features, lengths, max_samples,
                            n_features)
        _FastForest(forest)  # raises if the trees do not hold together
        return forest
    except (KeyError, TypeError, ValueError, IndexError, OSError, zipfile.BadZipFile,
            json.JSONDecodeError):
        return None


def _node_depths(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Each node's depth counting the root as 1 (scikit-learn's ``compute_node_depths``);
    -1 for a node no path reaches."""
    depth = np.full(len(left), -1, dtype=np.int64)
    depth[0] = 1
    todo = [0]
    while todo:
        i = todo.pop()
        for c in (int(left[i]), int(right[i])):
            if c != -1:
                if not 0 < c < len(left) or depth[c] != -1:
                    raise ValueError("not a tree")
                depth[c] = depth[i] + 1
                todo.append(c)
    return depth
