"""Load from the real oslo.messaging RPC client for `wasmrpc-bench chaos`.

usage: python chaos_load.py SPEC_JSON
SPEC: {"url", "exchange", "topic", "concurrency", "timeout"}
Calls `echo` from `concurrency` threads until a line arrives on stdin (or stdin closes), then
prints one JSON object: calls answered, failures by exception class (each with its wall-clock
time, so the caller can tell which fault it fell in), and calls hung past their timeout (still
running 10 s after it, or returned more than 5 s late).
"""
import json
import sys
import threading
import time

from oslo_config import cfg
import oslo_messaging as om


def main():
    spec = json.loads(sys.argv[1])
    conf = cfg.CONF
    conf([], project="wasmrpc-chaos")
    om.set_transport_defaults(control_exchange=spec.get("exchange", "openstack"))
    transport = om.get_rpc_transport(conf, url=spec["url"])
    timeout = spec.get("timeout", 10)
    client = om.get_rpc_client(transport, om.Target(topic=spec["topic"]), timeout=timeout)
    stop = threading.Event()
    lock = threading.Lock()
    tally = {"answered": 0, "failures": [], "late": 0, "late_at": []}
    running = {}

    def worker(n):
        i = 0
        while not stop.is_set():
            i += 1
            started = time.time()
            running[n] = started
            try:
                value = f"py-{n}-{i}"
                got = client.call({}, "echo", value=value)
                outcome = None if got == value else f"WrongAnswer: {got!r}"
            except Exception as exc:  # every failure is counted by its class
                outcome = type(exc).__name__
            ended = time.time()
            running.pop(n, None)
            with lock:
                if ended - started > timeout + 5:
                    tally["late"] += 1
                    tally["late_at"].append(started)
                if outcome is None:
                    tally["answered"] += 1
                else:
                    tally["failures"].append({"class": outcome, "started": started, "ended": ended})
                    time.sleep(0.05)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(spec["concurrency"])]
    for t in threads:
        t.start()
    print(json.dumps({"started": True}), flush=True)
    sys.stdin.readline()
    stop.set()
    deadline = time.time() + timeout + 10
    for t in threads:
        t.join(max(0.0, deadline - time.time()))
    hung = sum(1 for t in threads if t.is_alive())
    with lock:
        out = dict(tally, hung=hung + tally["late"])
    print(json.dumps(out), flush=True)
    # Threads still in a call would keep the interpreter alive.
    sys.stdout.flush()
    import os

    os._exit(0)


if __name__ == "__main__":
    main()
