"""Dockerfile: multi-stage, non-root, installs the project wheel; the build context
that .dockerignore leaves is enough to build that wheel (no Docker engine here, so
the wheel step is run with pip directly)."""

from __future__ import annotations

import fnmatch
import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def context_files() -> list[Path]:
    """The files .dockerignore lets into the build context (its simple patterns)."""
    rules = [r.strip() for r in (ROOT / ".dockerignore").read_text().splitlines()
             if r.strip() and not r.startswith("#")]
    kept = []
    for path in ROOT.rglob("*"):
        if not path.is_file() or ".venv" in path.parts or ".git" in path.parts:
            continue
        rel = path.relative_to(ROOT).as_posix()
        keep = True
        for rule in rules:
            neg = rule.startswith("!")
            pat = rule[1:] if neg else rule
            pat = pat.rstrip("/")
            hit = (fnmatch.fnmatch(rel, pat) or rel.startswith(pat + "/")
                   or fnmatch.fnmatch(rel, pat.replace("**/", "*/"))
                   or (pat.startswith("**/") and fnmatch.fnmatch(path.name, pat[3:])))
            if hit:
                keep = neg
        if keep:
            kept.append(path)
    return kept


def test_dockerfile_shape() -> None:
    ins = instructions()
    froms = [rest for word, rest in ins if word == "FROM"]
    assert len(froms) >= 2, "multi-stage: a build stage and a runtime stage"
    assert any(" AS build" in f for f in froms)
    users = [rest for word, rest in ins if word == "USER"]
    assert users, "the image must not run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "numeric USER: Kubernetes runAsNonRoot can check it"
    assert int(uid) != 0
    assert ("EXPOSE", "9464") in ins
    assert ("ENTRYPOINT", '["watchdog"]') in ins
    runs = " ".join(rest for word, rest in ins if word == "RUN")
    assert "pip wheel --constraint requirements.lock" in runs
    assert "COPY pyproject.toml requirements.lock" in " ".join(
        f"{w} {r}" for w, r in ins if w == "COPY")
    assert "--no-index --find-links /wheels watchdog-privacy" in runs
    assert not any(word == "ADD" for word, _ in ins)


@pytest.mark.slow
def test_context_builds_the_wheel(tmp_path: Path) -> None:
    ctx = tmp_path / "context"
    for path in context_files():
        dest = ctx / path.relative_to(ROOT)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
    rel = {p.relative_to(ctx).as_posix() for p in ctx.rglob("*") if p.is_file()}
    assert {"pyproject.toml", "requirements.lock", "README.md", "watchdog/cli.py"} <= rel
    assert not any(r.startswith(("tests/", "deploy/", ".venv/")) for r in rel)
    wheels = tmp_path / "wheels"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "--wheel-dir", str(wheels),
         str(ctx)], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    (wheel,) = wheels.glob("watchdog_privacy-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "watchdog/schemas/access-event.schema.json" in names
    assert "watchdog/policies/default.yaml" in names
    assert "watchdog/systemd.py" in names
    # what the docs point at: the default model and the example config, as package data
    for shipped in ("models/default/manifest.json", "models/default/model.skops",
                    "models/default/SHA256SUMS", "daemon/watchdog.example.yaml"):
        assert f"watchdog/{shipped}" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "watchdog = watchdog.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()

    # installed in an environment of its own, the command finds them (no source tree)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                    "install", "-q", "--no-deps", str(wheel)] if _pip_has_python() else
                   [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(_site(venv)), str(wheel)], check=True, timeout=300)
    cmd = [str(venv / "bin" / "python"), "-I", "-m", "watchdog", "config"]
    example = subprocess.run([*cmd, "example"], capture_output=True, text=True, check=True,
                             cwd=tmp_path).stdout
    assert example == (ROOT / "watchdog/daemon/watchdog.example.yaml").read_text()
    paths = subprocess.run([*cmd, "paths"], capture_output=True, text=True, check=True,
                           cwd=tmp_path).stdout
    model_dir = Path(paths.split("default model")[1].split()[0])
    assert str(model_dir).startswith(str(venv))
    sums = (model_dir / "SHA256SUMS").read_text().split()
    assert hashlib.sha256((model_dir / "model.skops").read_bytes()).hexdigest() in sums


def _pip_has_python() -> bool:
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--help"],
                         capture_output=True, text=True, check=False).stdout
    return "--python" in out


def _site(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))
