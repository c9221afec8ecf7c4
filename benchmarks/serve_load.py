"""``fastseg serve`` under load on loopback: requests a second and p50/p99 latency.

    python benchmarks/serve_load.py                  # ~30 s: three measurements of 6 s
    python benchmarks/serve_load.py --seconds 2      # quick check

The target (issue, on 2 cores): p50 < 0.5 ms, p99 < 2 ms and at least 3,000 single-customer
requests a second. A model is fitted on 20,000 generated customers (8 numeric features and
the region, k=6, standard scaling, nulls filled by the median); ``fastseg serve`` runs as a
subprocess on a free loopback port, and each measurement sends, over keep-alive connections,
single customers (1 connection: latency; 2 connections: throughput) and arrays of 1,000.

The client is a separate process per connection (never the server's), on raw sockets with the
requests encoded beforehand: httpx costs some 150 µs a request of its own, more than the
server. The client still shares the machine's cores with the server, so its CPU time counts
against the figures: both processes' CPU time per request is measured (``/proc``) and printed.
Each measurement is bounded in time (``--seconds``) and in requests (``--max-requests``).
Output: one line per measurement, the verdict, and the figures with machine information in
``benchmarks/results/serve_load-YYYYmmdd-HHMMSS.json`` (``--out`` for another folder).
"""

import argparse
import json
import multiprocessing
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from results_file import add_out_option, write_results

WARM_UP = 300  # requests per connection before the clock starts
TARGET = {"p50_ms": 0.5, "p99_ms": 2.0, "single_requests_per_s": 3000}


# ----- the client: one process per keep-alive connection ------------------------------------
def request_bytes(port, body):
    head = (
        f"POST /segment HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def read_response(sock, buffer):
    """(status, the bytes left over) of one response read off ``sock``."""
    while b"\r\n\r\n" not in buffer:
        buffer += _recv(sock)
    head, _, rest = buffer.partition(b"\r\n\r\n")
    status = int(head[9:12])
    lines = head.lower().split(b"\r\n")
    length = next(int(x.split(b":")[1]) for x in lines if x.startswith(b"content-length:"))
    while len(rest) < length:
        rest += _recv(sock)
    return status, rest[length:]


def _recv(sock):
    chunk = sock.recv(1 << 20)
    if not chunk:
        raise ConnectionError("the server closed the connection")
    return chunk


def client(port, requests, start_at, seconds, max_requests, results):
    """Send ``requests`` in turn until ``seconds`` or ``max_requests``; latencies in ns."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer, failed = b"", 0
    for i in range(WARM_UP):
        sock.sendall(requests[i % len(requests)])
        status, buffer = read_response(sock, buffer)
    while time.time() < start_at:
        time.sleep(0.001)
    latencies, n = [], len(requests)
    clock = time.perf_counter_ns
    cpu, began = time.process_time(), clock()
    deadline = began + int(seconds * 1e9)
    for i in range(max_requests):
        t0 = clock()
        sock.sendall(requests[i % n])
        status, buffer = read_response(sock, buffer)
        latencies.append(clock() - t0)
        failed += status != 200
        if t0 > deadline:
            break
    elapsed = (clock() - began) / 1e9
    sock.close()
    results.put((latencies, failed, elapsed, time.process_time() - cpu))


def measure(port, requests, connections, seconds, max_requests, server_pid):
    """One measurement: ``connections`` client processes at once; the figures."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start_at = time.time() + 2.0  # after every client has connected and warmed up
    per = max_requests // connections
    args = (port, requests, start_at, seconds, per, results)
    workers = [context.Process(target=client, args=args) for _ in range(connections)]
    for w in workers:
        w.start()
    while time.time() < start_at:
        time.sleep(0.001)
    server_cpu = cpu_seconds(server_pid)
    found = [results.get(timeout=seconds + 120) for _ in workers]
    server_cpu = cpu_seconds(server_pid) - server_cpu
    for w in workers:
        w.join()
    latencies = sorted(x for f in found for x in f[0])
    count = len(latencies)
    elapsed = max(f[2] for f in found)
    return {
        "connections": connections,
        "requests": count,
        "failed": sum(f[1] for f in found),
        "seconds": round(elapsed, 2),
        "requests_per_s": round(count / elapsed),
        "p50_ms": round(latencies[count // 2] / 1e6, 3),
        "p99_ms": round(latencies[min(count - 1, int(count * 0.99))] / 1e6, 3),
        "mean_ms": round(statistics.fmean(latencies) / 1e6, 3),
        "server_cpu_us_per_request": round(server_cpu / count * 1e6, 1),
        "client_cpu_us_per_request": round(sum(f[3] for f in found) / count * 1e6, 1),
    }


def cpu_seconds(pid):
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ----- the server and the run -----------------------------------------------------------------
def fit_model(folder, rows):
    """A model like the drift benchmark's, and customers to send (rows without nulls)."""
    import polars as pl

    import fastseg
    from fastseg.datasets import FEATURES, write_customers

    data = folder / "customers.parquet"
    write_customers(data, rows, seed=3)
    model = folder / "model.json"
    fastseg.KMeans(
        6, random_state=0, scale="standard", missing="median", categorical=["region"]
    ).fit(data, columns=[*FEATURES, "region"]).save(model)
    frame = pl.read_parquet(data).select(*FEATURES, "region").drop_nulls()
    return model, frame.to_dicts()


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model, port, log):
    command = [sys.executable, "-m", "fastseg", "serve", str(model), "--port", str(port)]
    server = subprocess.Popen(command, stdout=log, stderr=log)
    deadline = time.time() + 60
    while time.time() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"fastseg serve ended with status {server.returncode}; see {log.name}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                if read_response(sock, b"")[0] == 200:
                    return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("fastseg serve did not answer /healthz within 60 s")


def run_all(args, port, customers, server):
    """The three measurements, printed as they finish."""
    singles = [request_bytes(port, json.dumps(c).encode()) for c in customers[:2000]]
    batches = [
        request_bytes(port, json.dumps(customers[s : s + args.batch]).encode())
        for s in range(0, min(len(customers), 10 * args.batch) - args.batch + 1, args.batch)
    ]
    plan = [
        ("single customer, 1 connection", singles, 1),
        (f"single customer, {args.connections} connections", singles, args.connections),
        (f"batch of {args.batch:,}, 1 connection", batches, 1),
    ]
    found = {}
    for name, requests, connections in plan:
        cap = args.max_requests if requests is singles else max(1, args.max_requests // 100)
        result = measure(port, requests, connections, args.seconds, cap, server.pid)
        if requests is batches:
            result["customers_per_s"] = result["requests_per_s"] * args.batch
        found[name] = result
        print(f"{name:<34}" + "  ".join(f"{k}={v}" for k, v in result.items()), flush=True)
    return found


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="customers to fit on")
    parser.add_argument("--seconds", type=float, default=6.0, help="per measurement")
    parser.add_argument("--max-requests", type=int, default=200_000, help="per measurement")
    parser.add_argument("--connections", type=int, default=2, help="for the throughput run")
    parser.add_argument("--batch", type=int, default=1000, help="customers per batch request")
    add_out_option(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    stamp = datetime.now()
    with tempfile.TemporaryDirectory(prefix="serve-load-") as name:
        folder = Path(name)
        print("fitting the model ...", flush=True)
        model, customers = fit_model(folder, args.rows)
        port = free_port()
        with open(folder / "server.log", "w+") as log:
            server = start_server(model, port, log)
            try:
                found = run_all(args, port, customers, server)
            finally:
                server.terminate()
                server.wait(timeout=30)
    single = found["single customer, 1 connection"]
    most = max(r["requests_per_s"] for n, r in found.items() if n.startswith("single"))
    verdict = {
        "p50_ms": single["p50_ms"] < TARGET["p50_ms"],
        "p99_ms": single["p99_ms"] < TARGET["p99_ms"],
        "single_requests_per_s": most >= TARGET["single_requests_per_s"],
    }
    print(f"target {TARGET}: met {verdict}")
    report(args, found, verdict, stamp)


def report(args, found, verdict, stamp):
    figures = {
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "client": "raw sockets, one process per keep-alive connection, requests encoded "
        "beforehand; shares the cores with the server (its CPU per request is given)",
        "target": TARGET,
        "target_met": verdict,
        "results": found,
    }
    path = write_results(args, "serve_load", stamp, figures)
    print(f"written: {path}")


if __name__ == "__main__":
    main()
