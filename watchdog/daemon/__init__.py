"""``watchdog run``: the live daemon (Kafka/MQTT in, alerts out).

The detection itself is the core's :class:`~watchdog.engine.detector.Detector`, the same one
``watchdog replay`` drives; this package only moves bytes in and alerts out, keeps Kafka
offsets honest (at-least-once), and exposes metrics and health.
"""
