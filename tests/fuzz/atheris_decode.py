"""Coverage-guided fuzzing (atheris / libFuzzer) of decoding, validation and the rules.

Run as a script::

    .venv/bin/python tests/fuzz/atheris_decode.py -atheris_runs=100000 [CORPUS_DIR] [FLAGS]

(``FLAGS``: any libFuzzer flags, e.g. ``-artifact_prefix=crashes/``.)

The first byte of an input picks the document type (access event, directory record, subject
record) and a ``max_bytes`` limit; the rest is the document. Whatever it is, ``Decoder.decode``
must return a document or a rejection with a known reason and a one-line detail. A decoded
access event then goes through a fresh engine (the embedded default policy, a directory and
register that know some of the accounts and subjects the seeds use) and a Detector, twice
with the event redelivered: nothing may raise and every alert must pass the engine fuzz's
``check_alert`` (schema-valid, pseudonyms only). Python code
of the watchdog is instrumented, so libFuzzer steers towards new branches of the decoder's
classification, the time checks and the rules. Without a corpus directory a temporary one is
seeded with the contract's examples; a JSON dictionary is always passed (``-dict``). Crashes
are written where ``-artifact_prefix`` says (default: the current directory).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tests.fuzz

with atheris.instrument_imports(include=["watchdog"]):  # before anything imports watchdog
    from tests.fuzz._scenarios import check_alert
    from watchdog.alerts.pseudonym import Pseudonymizer
    from watchdog.decode import REASONS, Decoder, Rejection
    from watchdog.engine.detector import Detector
    from watchdog.engine.engine import Engine
    from watchdog.events import (
        AccessEvent,
        DirectoryRecord,
        SubjectRecord,
        check_times,
        epoch,
    )
    from watchdog.policy import load_policy
    from watchdog.rules import default_rules

KEY = b"atheris-key-0123456789abcdef"
POLICY = load_policy(None)
TYPES = (AccessEvent, DirectoryRecord, SubjectRecord)
LIMITS = (1 << 20, 64, 256, 1024)
DECODERS = {(t, m): Decoder(t, max_bytes=m, check=check_times) for t in TYPES for m in LIMITS}
KNOWN = Decoder(DirectoryRecord)
SUBJECT = Decoder(SubjectRecord)
STATE = [
    KNOWN.decode(b'{"user_id":"e1","status":"active","effective":"2026-01-01T00:00:00Z",'
                 b'"roles":["support_agent"]}'),
    KNOWN.decode(b'{"user_id":"e2","status":"departed","effective":"2026-06-01T00:00:00Z"}'),
    KNOWN.decode(b'{"user_id":"e3","status":"transferred","effective":"2026-06-01T00:00:00Z",'
                 b'"roles":["marketer"]}'),
]
SUBJECTS = [
    SUBJECT.decode(b'{"subject_id":"c-1","type":"erasure_requested",'
                   b'"effective":"2026-01-01T00:00:00Z"}'),
    SUBJECT.decode(b'{"subject_id":"c-2","type":"minor","effective":"2026-01-01T00:00:00Z"}'),
    SUBJECT.decode(b'{"subject_id":"c-2","type":"marketing_opt_out",'
                   b'"effective":"2026-01-01T00:00:00Z"}'),
    SUBJECT.decode(b'{"subject_id":"c-3","type":"consent_granted","purposes":["marketing"],'
                   b'"effective":"2026-01-01T00:00:00Z"}'),
]

SEEDS = [
    b'\x00{"@timestamp":"2026-11-20T09:15:02.123Z","event":{"id":"a","action":"export",'
    b'"dataset":"crm.audit","sequence":3},"user":{"id":"e1"},"source":{"ip":"8.8.8.8"},'
    b'"data":{"resource":"crm.customers","categories":["identity","payment"],'
    b'"subject_ids":["c-1","c-2","c-3"],"purpose":"marketing","anonymized":false,'
    b'"collected_at":"2001-01-01T00:00:00+09:00"},"destination":{"kind":"third_party",'
    b'"domain":"evil.example","organization":"X","country":"CN"}}',
    b'\x00{"@timestamp":"2026-11-21T03:00:00+09:00","event":{"id":"b","action":"login",'
    b'"outcome":"failure"},"user":{"id":"e2"}}',
    b'\x00{"@timestamp":"2026-11-21T03:00:00Z","event":{"id":"c","action":"email"},'
    b'"user":{"id":"ghost"},"data":{"subject_count":100000,"resource":"dwh.x",'
    b'"anonymized":true},"destination":{"kind":"external_media"}}',
    b'\x01{"user_id":"e1","status":"departed","effective":"2026-11-01T00:00:00Z",'
    b'"roles":["a"],"department":"d","manager":"m"}',
    b'\x02{"subject_id":"c-1","type":"consent_granted","effective":"2026-11-01T00:00:00Z",'
    b'"purposes":["marketing"]}',
]
DICTIONARY = [
    '"@timestamp"', '"event"', '"user"', '"data"', '"destination"', '"source"', '"host"',
    '"id"', '"action"', '"outcome"', '"dataset"', '"sequence"', '"roles"', '"ip"', '"name"',
    '"resource"', '"categories"', '"subject_ids"', '"subject_count"', '"records"', '"bytes"',
    '"purpose"', '"anonymized"', '"collected_at"', '"kind"', '"domain"', '"organization"',
    '"country"', '"user_id"', '"status"', '"effective"', '"subject_id"', '"type"',
    '"purposes"', '"department"', '"manager"', '"export"', '"login"', '"email"', '"failure"',
    '"third_party"', '"external_media"', '"cloud_storage"', '"departed"', '"transferred"',
    '"marketing"', '"minor"', '"cleared"', '"payment"', '"my_number"', '"identity"',
    '"2026-11-20T09:15:02Z"', '"0001-01-01T00:00:00+14:00"', '"9999-12-31T23:59:59-23:59"',
    '"1969-12-31T23:59:59.999999Z"', "NaN", "Infinity", "-Infinity", "null", "true", "false",
    "1e999", "18446744073709551616", "-1", '"\\ud800"', '"\\u0000"', "[[[[[[[[", "{}", "[]",
]


def test_one_input(data: bytes) -> None:
    if not data:
        return
    kind = TYPES[data[0] % 3]
    limit = LIMITS[(data[0] >> 2) % len(LIMITS)]
    raw = data[1:]
    result = DECODERS[(kind, limit)].decode(raw)
    if isinstance(result, Rejection):
        assert result.reason in REASONS, result
        assert result.detail, result
        assert "\n" not in result.detail, result
        assert "\r" not in result.detail, result
        if result.reason == "too_large":
            assert len(raw) > limit
        return
    assert len(raw) <= limit
    if not isinstance(result, AccessEvent):
        return
    engine = Engine(POLICY, Pseudonymizer(KEY), default_rules())
    for rec in STATE:
        engine.apply_directory(rec)  # type: ignore[arg-type]
    for srec in SUBJECTS:
        engine.apply_subject(srec)  # type: ignore[arg-type]
    detector = Detector(engine)
    t = epoch(result.timestamp)
    alerts = list(detector.push(result, t, 0).alerts)
    redelivered = detector.push(result, t, 1)  # a redelivery: dropped
    assert redelivered.duplicate
    assert not redelivered.alerts
    alerts += detector.flush()
    assert detector.order.stats.duplicates == 1
    assert detector.processed == 1
    datasets = {result.event.dataset} if result.event.dataset else set()
    for a in alerts:
        check_alert(a, {result.event.id}, {result.user.id}, datasets)


def main(argv: list[str]) -> None:
    args = list(argv)
    work = Path(tempfile.mkdtemp(prefix="watchdog-atheris-"))
    if not any(not a.startswith("-") for a in args[1:]):  # no corpus directory given
        corpus = work / "corpus"
        corpus.mkdir()
        for i, seed in enumerate(SEEDS):
            (corpus / f"seed-{i}").write_bytes(seed)
        examples = Path(__file__).resolve().parents[3] / "shared" / "contract" / "examples"
        for name, prefix in (("access-events.jsonl", b"\x00"), ("directory.jsonl", b"\x01"),
                             ("subjects.jsonl", b"\x02")):
            if (examples / name).is_file():
                for j, line in enumerate((examples / name).read_bytes().splitlines()):
                    (corpus / f"{name}-{j}").write_bytes(prefix + line)
        args.append(str(corpus))
    if not any(a.startswith("-dict=") for a in args):
        d = work / "json.dict"
        d.write_text("".join(f"kw{i}={_quote(w)}\n" for i, w in enumerate(DICTIONARY)))
        args.append(f"-dict={d}")
    if not any(a.startswith("-max_len=") for a in args):
        args.append("-max_len=4096")
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


def _quote(word: str) -> str:
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


if __name__ == "__main__":
    main(sys.argv)
