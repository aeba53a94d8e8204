"""Load from the real oslo.messaging RPC client for `wasmrpc-bench chaos`.

usage: python chaos_load.py SPEC_JSON
SPEC: {"url", "exchange", "topic", "concurrency", "timeout"}
Calls `echo` from `concurrency` threads until a line arrives on stdin (or stdin closes), then
prints one JSON object: calls answered, failures by exception class (each with its wall-clock
time, so the caller can tell which fault it fell in), and calls that ran past their timeout
(still running 10 s after it, or returned more than 5 s late), in two kinds:

- `late_publishing`: the lateness is oslo's publish time. oslo's call timeout covers only the
  wait for the reply: `AMQPDriverBase._send` publishes (`topic_send`, which retries the
  connection as long as `rabbit_retry_interval` and friends say; `retry=None`: for ever), and
  only then calls `ReplyWaiter.wait(msg_id, timeout)`, whose timer starts there. A call whose
  publish took 6 s through a broker restart and then got no reply returns a MessagingTimeout
  16 s after it started: late, yet its reply wait kept its timeout. Counted here: calls whose
  time *after* their publish ended stayed within timeout + 5 s (or that were still publishing).
  That is oslo's own behaviour, whatever the server is (bench/chaos_oslo_ab.py shows it against
  a native oslo.messaging server too).
- `hung`: everything else late: the reply wait itself outlived its timeout by 5 s.

`late_at` and `late_publishing_at` hold the start times of each kind; `late_detail` each late
call's publish and end times relative to its start; `late_stacks` the stack of the caller's
thread for calls still running timeout + 5 s after they started (at most 8).
"""
import json
import sys
import threading
import time
import traceback

from oslo_config import cfg
import oslo_messaging as om
from oslo_messaging._drivers import impl_rabbit

# By thread id: when the thread's current request left oslo's publisher (None while publishing).
published_at = {}


def _timed(send):
    def wrapper(*args, **kwargs):
        try:
            return send(*args, **kwargs)
        finally:
            published_at[threading.get_ident()] = time.time()

    return wrapper


# RPC calls publish through `topic_send` (amqpdriver.AMQPDriverBase._send), in the caller's thread.
impl_rabbit.Connection.topic_send = _timed(impl_rabbit.Connection.topic_send)


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
    tally = {"answered": 0, "failures": [], "late": 0, "late_at": [], "late_publishing": 0, "late_publishing_at": []}
    # Per worker: when its current call started, and its thread id.
    running = {}
    idents = {}
    # Stacks of calls still running `timeout + 5` s after they started (one per call, at most 8):
    # where the caller's thread is stuck, to tell oslo's client from the server.
    tally["late_stacks"] = []
    tally["late_detail"] = []
    dumped = set()

    def watchdog():
        # Also through the final wait after stop: a daemon, ended by os._exit.
        while True:
            time.sleep(1)
            now = time.time()
            frames = sys._current_frames()
            for n, started in list(running.items()):
                if now - started <= timeout + 5 or (n, started) in dumped or len(tally["late_stacks"]) >= 8:
                    continue
                dumped.add((n, started))
                frame = frames.get(idents.get(n))
                if frame is not None:
                    stack = "".join(traceback.format_stack(frame))
                    with lock:
                        tally["late_stacks"].append({"started": started, "after_s": now - started, "stack": stack})

    def publish_late(at, ended):
        """Whether a late call's lateness is its publish time: still publishing, or its reply
        wait (from the publish's end) stayed within timeout + 5 s."""
        return at is None or ended - at <= timeout + 5

    def worker(n):
        idents[n] = threading.get_ident()
        i = 0
        while not stop.is_set():
            i += 1
            started = time.time()
            running[n] = started
            published_at[threading.get_ident()] = None
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
                    at = published_at.get(threading.get_ident())
                    kind = "late_publishing" if publish_late(at, ended) else "late"
                    tally[kind] += 1
                    tally[kind + "_at"].append(started)
                    tally["late_detail"].append({
                        "kind": kind, "started": started, "outcome": outcome or "answered",
                        "published_after_s": None if at is None else at - started, "ended_after_s": ended - started})
                if outcome is None:
                    tally["answered"] += 1
                else:
                    tally["failures"].append({"class": outcome, "started": started, "ended": ended})
                    time.sleep(0.05)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(spec["concurrency"])]
    for t in threads:
        t.start()
    threading.Thread(target=watchdog, daemon=True).start()
    print(json.dumps({"started": True}), flush=True)
    sys.stdin.readline()
    stop.set()
    deadline = time.time() + timeout + 10
    for t in threads:
        t.join(max(0.0, deadline - time.time()))
    now = time.time()
    hung = 0
    with lock:
        for n, t in enumerate(threads):
            if not t.is_alive() or n not in running:
                continue
            started = running[n]
            at = published_at.get(t.ident)
            if publish_late(at, now) and now > started + timeout:
                tally["late_publishing"] += 1
                tally["late_publishing_at"].append(started)
            else:
                hung += 1
        out = dict(tally, hung=hung + tally["late"])
    print(json.dumps(out), flush=True)
    # Threads still in a call would keep the interpreter alive.
    sys.stdout.flush()
    import os

    os._exit(0)


if __name__ == "__main__":
    main()
