"""JSON as oslo.messaging writes it: ``oslo_serialization.jsonutils`` turns sets and tuples
into lists, datetimes into ISO text and UUIDs into strings; anything else that ``json`` cannot
write is a ``TypeError`` naming the type."""

import datetime
import json
import uuid

_ISO = "%Y-%m-%dT%H:%M:%S.%f"


def _primitive(value):
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, datetime.datetime):
        return value.strftime(_ISO)
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "to_dict"):  # oslo.context's RequestContext and its kind
        return value.to_dict()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# One encoder for every call: `json.dumps` with any non-default option builds a new one each time.
_ENCODER = json.JSONEncoder(default=_primitive, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dumps(value):
    """Compact JSON text of ``value``; NaN and infinities are refused (JSON has none)."""
    return _ENCODER.encode(value)


def loads(text):
    """The value of JSON text."""
    return json.loads(text)


def context_dict(ctxt):
    """A request context as a dict: a dict as is, an oslo ``RequestContext`` through ``to_dict``."""
    if ctxt is None:
        return {}
    if isinstance(ctxt, dict):
        return ctxt
    if hasattr(ctxt, "to_dict"):
        return ctxt.to_dict()
    return dict(ctxt)
