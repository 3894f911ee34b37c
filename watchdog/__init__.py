"""watchdog: make a privacy policy enforceable."""

__version__ = "0.1.0"
