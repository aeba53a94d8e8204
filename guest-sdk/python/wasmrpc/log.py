"""Python ``logging`` into the host's log."""

import logging

from . import host


def level_name(levelno):
    """The host's level for a ``logging`` level number."""
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warn"
    if levelno >= logging.INFO:
        return "info"
    if levelno >= logging.DEBUG:
        return "debug"
    return "trace"


class HostHandler(logging.Handler):
    """Sends each record to the host's log at the matching level, as ``logger: message``
    (with the traceback when the record carries one)."""

    def __init__(self):
        super().__init__()
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def emit(self, record):
        try:
            host.log(level_name(record.levelno), self.format(record))
        except Exception:  # noqa: BLE001 - logging must never break a call
            self.handleError(record)


_installed = False


def install(level=logging.INFO):
    """Routes the root logger to the host, once. Records below ``level`` (oslo.log's default,
    INFO) never cross to the host; ``logging.getLogger().setLevel(logging.DEBUG)`` in the
    endpoint's module lets debug records through."""
    global _installed
    if _installed:
        return
    _installed = True
    root = logging.getLogger()
    root.addHandler(HostHandler())
    if root.level == logging.WARNING:  # untouched by the endpoint's module
        root.setLevel(level)
