"""Where access events come from: one module per backend behind
:class:`~watchdog.daemon.sources.base.Source`."""
