"""The archive: every access event, record and alert, kept as Parquet beyond Kafka's retention.

Layout (:mod:`.layout`): ``<dataset>/day=YYYY-MM-DD/<segment>.parquet`` under a local directory
or an S3 prefix (:mod:`.store`), one dataset per stream (``events``, ``directory``,
``subjects``, ``accounts``, ``alerts``), partitioned by the UTC day of event time (records:
``effective``, by year). Each finished segment's SHA-256 goes into a hash-chained manifest
(:mod:`.manifest`); ``watchdog archive verify`` (:mod:`.verify`) checks both. Segments are
written by :class:`.writer.ArchiveWriter` from documents buffered in pieces (:mod:`.buffer`),
deduplicating ``event.id`` per day, also against other writers' new segments; read with DuckDB
(:mod:`.reader`: each id once, whatever is stored), they answer a right-of-access request
(:mod:`.report`) or back an alert with evidence (:mod:`.evidence`); each such look is recorded
in the daemon's audit trail (:mod:`.access_log`).
"""
