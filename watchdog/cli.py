"""The ``watchdog`` command line: replay, run, train, simulate, check-policy, config."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

import watchdog
from watchdog.collision import foreign_watchdog

# PyPI's ``watchdog`` may have overwritten our __init__.py (see watchdog.collision)
__version__: str = getattr(watchdog, "__version__", "unknown")


def _fail(msg: str) -> int:
    print(f"watchdog: error: {msg}", file=sys.stderr)
    return 2


def _replay(args: argparse.Namespace) -> int:
    from watchdog.files.jsonl import InputError, RejectedWriter
    from watchdog.policy import PolicyError, load_policy
    from watchdog.replay import build_engine, open_output, rejected_path_for, replay
    from watchdog.reporting import (
        ReplayInputs,
        replay_progress,
        replay_summary,
        replay_summary_json,
    )

    if args.archive:  # the archive's documents as the files below (watchdog.archive.export)
        from watchdog.archive.export import replay_archive

        return replay_archive(args, _replay)
    if not args.events:
        return _fail("give --events (or --archive)")
    for label, path in (("--events", args.events), ("--directory", args.directory),
                        ("--subjects", args.subjects), ("--accounts", args.accounts)):
        if path and path != "-" and (not Path(path).exists() or Path(path).is_dir()):
            return _fail(f"{label} {path}: no such file")
    if args.json and args.out == "-":
        return _fail("--json prints the summary on stdout, which --out - gives to the alerts: "
                     "write the alerts to a file")
    try:
        policy = load_policy(args.policy)
    except PolicyError as err:
        return _fail(str(err))
    inputs = ReplayInputs.of(args, policy)
    for warning in inputs.warnings():  # before the work: a long run should not hide them
        print(f"watchdog: warning: {warning}", file=sys.stderr)
    engine = build_engine(policy)
    stages = []
    if args.model:
        from watchdog.anomaly.stage import load_stage

        try:
            stages.append(load_stage(args.model, engine))
        except ValueError as err:
            return _fail(str(err))
        if args.labels:  # the analysts' labels, as the daemon reads them
            from watchdog.anomaly.labels_file import read_labels

            try:
                stages[0].risk.set_labels(read_labels(args.labels))
            except ValueError as err:
                return _fail(str(err))
    rejected = RejectedWriter(rejected_path_for(args.out))
    # alerts on a terminal and a progress bar on the same terminal would interleave
    show_progress = not (args.out == "-" and sys.stdout.isatty())
    try:
        with ExitStack() as stack:
            out = open_output(args.out, stack)
            progress = stack.enter_context(replay_progress(args.events, show_progress))
            result = replay(args.events, out, engine, directory=args.directory,
                            subjects=args.subjects, accounts=args.accounts, stages=stages,
                            rejected=rejected,
                            progress=progress, freeze_gc=True)
    except BrokenPipeError:
        # `watchdog replay --out - | head`: the reader has what it wanted; no traceback and no
        # error line (and no second BrokenPipeError when Python flushes stdout at exit)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except InputError as err:
        return _fail(str(err))
    except OSError as err:
        return _fail(f"{args.out}: {err.strerror}")
    finally:
        rejected.close()
    if args.json:
        print(replay_summary_json(result, inputs))
    else:
        replay_summary(result, inputs)
    if args.fail_on_alerts and sum(result.alerts.values()):
        return 1
    return 0


def _add_replay(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("replay", help="run the rules over JSONL files (no servers)")
    p.add_argument("--events", help="access events JSONL ('-' stdin, .gz ok)")
    p.add_argument("--archive", help="instead of the files: an archive (watchdog archive)")
    p.add_argument("--from", dest="first", help="with --archive: events from this time")
    p.add_argument("--to", dest="last", help="with --archive: events before this time")
    p.add_argument("--directory", help="directory records JSONL")
    p.add_argument("--subjects", help="subject-register records JSONL")
    p.add_argument("--accounts", help="identity-provider account records JSONL (1.1)")
    p.add_argument("--policy", help="policy YAML/JSON (default: the embedded default policy)")
    p.add_argument("--model", help="anomaly model directory (from `watchdog train`)")
    p.add_argument("--labels", help="with --model: analysts' labels file (watchdog label)")
    p.add_argument("--out", required=True, help="alerts JSONL ('-' for stdout)")
    p.add_argument("--json", action="store_true",
                   help="print the summary as one JSON object on stdout (for scripts)")
    p.add_argument("--fail-on-alerts", action="store_true",
                   help="exit 1 when any alert was raised (for CI); 2 stays 'could not run'")
    p.set_defaults(func=_replay)


def _add_lazy(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_: str,
    module: str,
    command: str | None,
) -> None:
    """A subcommand whose module provides ``add_arguments(parser)`` and ``run(args)``.

    The module is imported only when ``name`` is the ``command`` about to run: the others'
    imports (numpy, asyncio, the simulator) would add ~0.3 s to every ``watchdog replay``.
    """
    import importlib

    p = sub.add_parser(name, help=help_)
    if name != command:
        return  # listed in the help; not the command this process runs
    try:
        mod = importlib.import_module(module)
    except ImportError:  # a part not built yet must not break the other commands
        p.set_defaults(func=lambda _a: _fail(f"'{name}' is not available in this build"))
        return
    mod.add_arguments(p)
    p.set_defaults(func=mod.run)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv`` (default ``sys.argv[1:]``), whose first word that is not an
    option names the subcommand."""
    args = sys.argv[1:] if argv is None else argv
    command = next((a for a in args if not a.startswith("-")), None)
    parser = argparse.ArgumentParser(
        prog="watchdog",
        description="Make a privacy policy enforceable: watch access logs, raise alerts.")
    parser.add_argument("--version", action="version", version=f"watchdog {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_replay(sub)
    _add_lazy(sub, "run", "the live daemon (Kafka/MQTT in, alerts out)", "watchdog.daemon.cli",
              command)
    _add_lazy(sub, "train", "fit the anomaly model on a baseline period",
              "watchdog.anomaly.train", command)
    _add_lazy(sub, "label", "an analyst's verdict on an alert (false or true positive)",
              "watchdog.anomaly.label_command", command)
    _add_lazy(sub, "simulate", "write a synthetic organisation's logs with known violations",
              "watchdog.simulate", command)
    _add_lazy(sub, "archive", "write or verify the archive of events, records and alerts",
              "watchdog.archive.cli", command)
    _add_lazy(sub, "subject-report", "every access to one data subject, from the archive",
              "watchdog.archive.report_cli", command)
    _add_lazy(sub, "evidence", "the bundle of facts an alert rests on, from the archive",
              "watchdog.archive.evidence_cli", command)
    _add_lazy(sub, "verify-audit", "check the hash chain of an alert audit trail",
              "watchdog.audit", command)
    _add_lazy(sub, "check-policy", "validate a policy, check its quotes, show the rules it runs",
              "watchdog.check_policy", command)
    _add_lazy(sub, "config", "print the example config; where the shipped model and policies are",
              "watchdog.config_command", command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    clash = foreign_watchdog()
    if clash:
        return _fail(clash)
    args = build_parser(argv).parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
