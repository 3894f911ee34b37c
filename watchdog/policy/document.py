"""Parse a policy file's text, finding the keys written twice.

YAML and JSON parsers keep the last of two equal keys without a word, so a second
``thresholds:`` at the end of a long file silently replaces the first. A duplicate key is
invalid YAML by the specification; here it is a problem naming both lines.
"""

from __future__ import annotations

import json
from typing import Any

import yaml


class DocumentError(ValueError):
    """The text is not YAML/JSON at all; ``str()`` is one line."""


def _path(parent: str, key: object) -> str:
    return f"{parent}.{key}" if parent else str(key)


def _yaml_duplicates(node: yaml.Node | None, parent: str, out: list[str]) -> None:
    if isinstance(node, yaml.MappingNode):
        first: dict[object, int] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            path = _path(parent, name)
            if name is not None and name != "<<":
                line = key.start_mark.line + 1
                if name in first:
                    out.append(f"{path}: duplicate key (line {line}; first at line "
                               f"{first[name]}): the later value would silently replace the "
                               "earlier")
                else:
                    first[name] = line
            _yaml_duplicates(value, path, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _yaml_duplicates(item, f"{parent}[{i}]", out)


def _json_pairs(out: list[str]) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for key, value in pairs:
            if key in obj:
                out.append(f"{key}: duplicate key: the later value would silently replace the "
                           "earlier")
            obj[key] = value
        return obj
    return hook


def parse_document(text: bytes, *, as_json: bool = False) -> tuple[Any, list[str]]:
    """``(document, duplicate-key problems)``; raises :class:`DocumentError` for text that
    does not parse."""
    problems: list[str] = []
    try:
        if as_json:
            return json.loads(text, object_pairs_hook=_json_pairs(problems)), problems
        _yaml_duplicates(yaml.compose(text, Loader=yaml.SafeLoader), "", problems)
        return yaml.safe_load(text), problems
    except (ValueError, yaml.YAMLError) as err:  # JSONDecodeError and UnicodeDecodeError too
        where = ""
        mark = getattr(err, "problem_mark", None)
        if mark is not None:
            where = f" (line {mark.line + 1}, column {mark.column + 1})"
        elif isinstance(err, json.JSONDecodeError):
            where = f" (line {err.lineno}, column {err.colno})"
        problem = getattr(err, "problem", None) or (str(err).splitlines() or [""])[0]
        if isinstance(err, json.JSONDecodeError):
            problem = err.msg
        raise DocumentError(f"not valid YAML/JSON{where}: {problem}") from None
