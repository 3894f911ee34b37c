"""Where alerts go: one module per backend behind :class:`~watchdog.daemon.sinks.base.Sink`."""
