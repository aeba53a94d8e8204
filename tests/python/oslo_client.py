"""Drives the real oslo.messaging RPC client (or Notifier) for wasmrpc's interop tests.

usage: python oslo_client.py SPEC_JSON
SPEC: {"url": ..., "exchange": ..., "ops": [OP, ...]}
OP:   {"topic", "method", "args", "ctxt", "prepare": {...}, "cast": bool, "timeout": s}
      or {"sleep": seconds}
Prints one JSON object per op on stdout: {"ok": result} or {"error": {...}}.
"""
import json
import sys
import time
import traceback

from oslo_config import cfg
import oslo_messaging as om


def describe(exc):
    out = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, om.RemoteError):
        out.update(exc_type=exc.exc_type, value=exc.value, traceback=exc.traceback)
    return out


def main():
    spec = json.loads(sys.argv[1])
    conf = cfg.CONF
    conf([], project="wasmrpc-interop")
    om.set_transport_defaults(control_exchange=spec.get("exchange", "openstack"))
    transport = om.get_rpc_transport(conf, url=spec["url"])
    results = []
    for op in spec["ops"]:
        if "sleep" in op:
            time.sleep(op["sleep"])
            results.append({"ok": None})
            print(json.dumps(results[-1]), flush=True)
            continue
        target = om.Target(topic=op["topic"])
        client = om.get_rpc_client(transport, target, timeout=op.get("timeout", 10))
        prepare = op.get("prepare") or {}
        if prepare:
            client = client.prepare(**prepare)
        try:
            if op.get("cast"):
                client.cast(op.get("ctxt") or {}, op["method"], **(op.get("args") or {}))
                results.append({"ok": None})
            else:
                result = client.call(op.get("ctxt") or {}, op["method"], **(op.get("args") or {}))
                results.append({"ok": result})
        except Exception as exc:  # every failure is reported, not raised
            results.append({"error": describe(exc)})
        print(json.dumps(results[-1]), flush=True)
    transport.cleanup()


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        sys.exit(2)
