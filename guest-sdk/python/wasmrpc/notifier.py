"""Notifications, with oslo.messaging's ``Notifier`` methods."""

from . import encoding, host


class NotificationResult:
    """What a notification listener's method returns (oslo's ``NotificationResult``)."""

    HANDLED = "handled"
    REQUEUE = "requeue"


class Notifier:
    """Emits notifications through the host: ``notifier.info(ctxt, "calc.added", {"sum": 5})``.

    oslo's ``Notifier(transport, publisher_id, driver, topics)`` takes where and as whom to
    publish; here those are the host's: it publishes with the endpoint's publisher id, to the
    topics and with the driver it is configured with, and only event types the manifest's
    ``[notifications] allow`` list matches. Each method returns ``True`` when the host sent the
    notification and ``False`` when the manifest denied it (the host logs why); like oslo's, it
    never raises for a notification that could not be delivered. A payload JSON cannot carry
    raises ``TypeError``, as it would under oslo's JSON serializer.
    """

    def prepare(self, **_overrides):
        """oslo's ``prepare(publisher_id=..., topics=..., ...)``: the host decides those, so
        this returns the same notifier."""
        return self

    def _notify(self, priority, ctxt, event_type, payload):
        return host.notify(priority, event_type, encoding.dumps(payload),
                           encoding.dumps(encoding.context_dict(ctxt)))

    def audit(self, ctxt, event_type, payload):
        return self._notify("audit", ctxt, event_type, payload)

    def debug(self, ctxt, event_type, payload):
        return self._notify("debug", ctxt, event_type, payload)

    def info(self, ctxt, event_type, payload):
        return self._notify("info", ctxt, event_type, payload)

    def warn(self, ctxt, event_type, payload):
        return self._notify("warn", ctxt, event_type, payload)

    warning = warn

    def error(self, ctxt, event_type, payload):
        return self._notify("error", ctxt, event_type, payload)

    def critical(self, ctxt, event_type, payload):
        return self._notify("critical", ctxt, event_type, payload)

    def sample(self, ctxt, event_type, payload):
        return self._notify("sample", ctxt, event_type, payload)


#: The endpoint's notifier.
notifier = Notifier()
