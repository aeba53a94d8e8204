"""Sends notifications with the real oslo.messaging Notifier, for wasmrpc's interop tests.

usage: python oslo_notify.py SPEC_JSON
SPEC: {"url", "exchange", "driver": "messagingv2"|"messaging", "topics": [...],
       "notifications": [{"publisher_id", "event_type", "priority", "payload", "ctxt"}]}
"ctxt" (optional) becomes an oslo.context RequestContext (a plain dict would be dropped).
"""
import json
import sys

from oslo_config import cfg
from oslo_context import context as oslo_context
import oslo_messaging as om


def main():
    spec = json.loads(sys.argv[1])
    conf = cfg.CONF
    conf([], project="wasmrpc-interop")
    om.set_transport_defaults(control_exchange=spec.get("exchange", "openstack"))
    transport = om.get_notification_transport(conf, url=spec["url"])
    for n in spec["notifications"]:
        notifier = om.Notifier(transport, publisher_id=n["publisher_id"], driver=spec["driver"],
                               topics=spec.get("topics") or ["notifications"])
        ctxt = oslo_context.RequestContext(**n["ctxt"]) if n.get("ctxt") else {}
        getattr(notifier, n.get("priority", "info"))(ctxt, n["event_type"], n["payload"])
    transport.cleanup()
    print("sent", flush=True)


if __name__ == "__main__":
    main()
