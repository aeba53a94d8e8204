"""A/B for the "hung" Python calls of the chaos run (issue 17): the same broker restart under the
same oslo.messaging client load (bench/chaos_load.py, 64 threads, 10 s timeout), against either a
`wasmrpc serve` host with the echo plugin or a native oslo.messaging RPC server
(tests/python/oslo_server.py). If Python calls hang against both, it is the oslo client.

usage: python bench/chaos_oslo_ab.py SERVER RUNS
  SERVER: wasmrpc | oslo
  env: RABBITMQ_NODENAME, WASMRPC_TEST_RABBIT_URL (a node of your own: this restarts it),
       WASMRPC_BIN (default /tmp/wasmrpc-main), ECHO_WASM (default plugins/target/.../echo.wasm)
Prints one JSON line per run: answered, failures by class, hung, late_publishing, the late
calls' start times relative to `stop_app`, and the stacks chaos_load.py dumped for late calls.
"""
import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TIMEOUT = 10
OUTAGE = 5


def rabbitmqctl(*args):
    subprocess.run(["rabbitmqctl", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_server(kind, url, exchange, topic, tmp):
    if kind == "oslo":
        proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tests/python/oslo_server.py"), url, exchange, topic, "ab-oslo"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "server.log"), "w"),
            env=dict(os.environ, PYTHONWARNINGS="ignore"), text=True)
        assert proc.stdout.readline().strip() == "ready"
        return proc
    wasm = os.environ.get("ECHO_WASM", os.path.join(ROOT, "plugins/target/wasm32-wasip1/release/echo.wasm"))
    manifests = os.path.join(tmp, "manifests")
    os.mkdir(manifests)
    with open(os.path.join(manifests, "echo.toml"), "w") as f:
        f.write(f'name = "echo"\nmodule = "{wasm}"\n\n[target]\ntopic = "{topic}"\nversion = "1.3"\n')
    proc = subprocess.Popen(
        [os.environ.get("WASMRPC_BIN", "/tmp/wasmrpc-main"), "serve", "--server", "ab-wasmrpc",
         "--control-exchange", exchange, "--manifests", manifests],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "server.log"), "w"),
        env=dict(os.environ, WASMRPC_TRANSPORT_URL=url))
    time.sleep(3)
    assert proc.poll() is None, "wasmrpc serve exited"
    return proc


def one_run(kind, url):
    rid = uuid.uuid4().hex[:8]
    exchange, topic = f"ab_{rid}", f"ab_echo_{rid}"
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(kind, url, exchange, topic, tmp)
        spec = {"url": url, "exchange": exchange, "topic": topic, "concurrency": 64, "timeout": TIMEOUT}
        load = subprocess.Popen([sys.executable, os.path.join(HERE, "chaos_load.py"), json.dumps(spec)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                env=dict(os.environ, PYTHONWARNINGS="ignore"), text=True)
        load.stdout.readline()
        time.sleep(5)
        stop_at = time.time()
        rabbitmqctl("stop_app")
        time.sleep(OUTAGE)
        rabbitmqctl("start_app")
        start_at = time.time()
        # Every call started in the outage has ended or is late by then.
        time.sleep(TIMEOUT + 15)
        load.stdin.write("stop\n")
        load.stdin.flush()
        line = load.stdout.readline()
        load.wait(timeout=60)
        try:
            if kind == "oslo":
                server.stdin.close()
                server.wait(timeout=20)
            else:
                server.terminate()
                server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        tally = json.loads(line)
        classes = collections.Counter(f["class"] for f in tally["failures"])
        return {
            "server": kind,
            "answered": tally["answered"],
            "failures": dict(classes),
            "hung": tally["hung"],
            "late_publishing": tally["late_publishing"],
            "late_at_rel_stop_app": [round(t - stop_at, 2) for t in tally["late_at"]],
            "start_app_rel_stop_app": round(start_at - stop_at, 2),
            # The rule before late_publishing covered publish time: late calls published in time.
            "hung_by_old_rule": sum(1 for d in tally["late_detail"]
                                    if d["published_after_s"] is not None and d["published_after_s"] <= TIMEOUT),
            "late_detail": [{"kind": d["kind"], "outcome": d["outcome"],
                             "published_after_s": None if d["published_after_s"] is None else round(d["published_after_s"], 2),
                             "ended_after_s": round(d["ended_after_s"], 2)} for d in tally["late_detail"]],
            "late_stacks": tally.get("late_stacks", []),
        }


def main():
    kind, runs = sys.argv[1], int(sys.argv[2])
    url = os.environ["WASMRPC_TEST_RABBIT_URL"]
    assert os.environ.get("RABBITMQ_NODENAME", "").startswith("n"), "use a node of your own"
    for _ in range(runs):
        print(json.dumps(one_run(kind, url)), flush=True)


if __name__ == "__main__":
    main()
