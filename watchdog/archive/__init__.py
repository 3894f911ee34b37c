"""The archive: every access event, record and alert, kept as Parquet beyond Kafka's retention.

Layout (:mod:`.layout`): ``<dataset>/day=YYYY-MM-DD/<segment>.parquet`` under a local directory
or an S3 prefix (:mod:`.store`), one dataset per stream (``events``, ``directory``,
``subjects``, ``accounts``, ``alerts``), partitioned by the UTC day of event time (records:
``effective``). Each finished segment's SHA-256 goes into a hash-chained manifest
(:mod:`.manifest`); ``watchdog archive verify`` (:mod:`.verify`) checks both. Segments are
written by :class:`.writer.ArchiveWriter` (deduplicating ``event.id`` per day), read with DuckDB
(:mod:`.reader`), and answer a right-of-access request (:mod:`.report`) or back an alert with
evidence (:mod:`.evidence`).
"""
