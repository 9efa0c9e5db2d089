"""The prober of bench.proxy, run inside a network namespace; one JSON line per command.

    until IP PORT NAME TIMEOUT   fresh TCP connections until the server named NAME
                                 answers: {"ok": true, "at": <CLOCK_MONOTONIC seconds>}
    time IP PORT N               N sequential connections (connect + answer), timed:
                                 {"samples": [s, ...], "errors": n}
"""

import json
import socket
import sys
import time


def answer(ip: str, port: int) -> str:
    with socket.create_connection((ip, port), timeout=2) as conn:
        data = b""
        while chunk := conn.recv(2048):
            data += chunk
    return data.decode().split(" ")[0]


def until(ip: str, port: int, name: str, timeout: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if answer(ip, port) == name:
                return {"ok": True, "at": time.monotonic()}
        except OSError:
            pass
        time.sleep(0.002)
    return {"ok": False}


def timed(ip: str, port: int, count: int) -> dict[str, object]:
    samples, errors = [], 0
    for _ in range(count):
        t0 = time.perf_counter()
        try:
            answer(ip, port)
        except OSError:
            errors += 1
            continue
        samples.append(time.perf_counter() - t0)
    return {"samples": samples, "errors": errors}


for line in sys.stdin:
    words = line.split()
    if words[0] == "until":
        out = until(words[1], int(words[2]), words[3], float(words[4]))
    else:
        out = timed(words[1], int(words[2]), int(words[3]))
    print(json.dumps(out), flush=True)
