"""``watchdog config``: the files the package ships, for a new installation to start from.

    watchdog config example > /etc/watchdog/watchdog.yaml   # every key, its default, a comment
    watchdog config paths                                    # where the shipped files are
"""

from __future__ import annotations

import argparse
import sys

from watchdog import packaged


def add_arguments(p: argparse.ArgumentParser) -> None:
    what = p.add_subparsers(dest="what", required=True)
    ex = what.add_parser("example", help="print the example watchdog.yaml (or write it: --out)")
    ex.add_argument("--out", help="write to this file instead of stdout (refuses to overwrite)")
    what.add_parser("paths", help="where the example config, default model and policies are")


def run(args: argparse.Namespace) -> int:
    if args.what == "paths":
        print(f"example config  {packaged.example_config()}")
        print(f"default model   {packaged.default_model()}   (--model default)")
        print(f"policy packs    {packaged.policy_packs()}")
        return 0
    text = packaged.example_config().read_text(encoding="utf-8")
    if not args.out:
        sys.stdout.write(text)
        return 0
    try:
        with open(args.out, "x", encoding="utf-8") as f:
            f.write(text)
    except OSError as err:
        print(f"watchdog: error: {args.out}: {err.strerror}", file=sys.stderr)
        return 2
    return 0
