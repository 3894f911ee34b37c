"""Alerts as the contract defines them."""

from watchdog.alerts.model import Alert, AlertSubjects, encode_alert

__all__ = ["Alert", "AlertSubjects", "encode_alert"]
