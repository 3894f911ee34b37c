"""The docs a new user reads first stay true: every command listed, no link that leaves the
repository or points at a section that does not exist, MQTT allowed by the NetworkPolicy that
the production example needs."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from watchdog.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "watchdog" / "models" / "README.md"]


def _anchors(text: str) -> set[str]:
    heads = re.findall(r"^#{1,6} (.+)$", text, re.M)
    out = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}
    return out | set(re.findall(r'<a id="([^"]+)"', text))


def test_readme_lists_every_command() -> None:
    # the subcommands as argparse's public usage line lists them ({replay,run,...}), not
    # through its private parser._actions
    usage = build_parser(["--help"]).format_usage()
    choices = re.search(r"\{([a-z,-]+)\}", usage)
    assert choices, usage
    commands = set(choices.group(1).split(","))
    assert {"replay", "run", "config"} <= commands, commands
    block = (ROOT / "README.md").read_text().split("## Commands", 1)[1].split("```")[1]
    listed = set(re.findall(r"^watchdog ([a-z-]+)", block, re.M))
    assert commands <= listed, f"missing from README's command list: {commands - listed}"


def test_links_stay_inside_the_repository_and_anchors_exist() -> None:
    for doc in DOCS:
        text = doc.read_text()
        assert "../shared" not in text, f"{doc}: a link leaves the repository"
        assert '"Secrets" above' not in text, doc
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            dest = (doc.parent / path).resolve() if path else doc
            assert dest.is_relative_to(ROOT), f"{doc}: {target} leaves the repository"
            assert dest.exists(), f"{doc}: {target} does not exist"
            if anchor and dest.suffix == ".md":
                assert anchor in _anchors(dest.read_text()), f"{doc}: no #{anchor} in {dest}"


def test_networkpolicy_lets_mqtt_out() -> None:
    policy = yaml.safe_load((ROOT / "deploy/kubernetes/base/networkpolicy.yaml").read_text())
    ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}
    assert {1883, 8883} <= ports
