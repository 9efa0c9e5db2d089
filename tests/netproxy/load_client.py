"""A client looping on a Service until told to stop, for the rolling-update test.

    load_client.py IP PORT STOP_FILE OUT_FILE

Sends GET /cgi-bin/hostname on a fresh connection, again and again, until STOP_FILE
exists; then writes {"requests": n, "failures": [...], "answers": {pod: count}} to
OUT_FILE as JSON. A failure is any error or a status other than 200.
"""

import json
import os
import socket
import sys
import time

ip, port, stop_file, out_file = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
requests = 0
failures: list[str] = []
answers: dict[str, int] = {}
while not os.path.exists(stop_file):
    requests += 1
    started = time.monotonic()
    try:
        with socket.create_connection((ip, port), timeout=10) as conn:
            conn.sendall(b"GET /cgi-bin/hostname HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := conn.recv(4096):
                data += chunk
        # busybox httpd passes a CGI's own header lines (ended by "\n\n") on
        lines = data.decode(errors="replace").strip().splitlines()
        status = lines[0].split(" ")[1] if lines and " " in lines[0] else "?"
        if status != "200" or len(lines) < 2:
            failures.append(f"{time.time():.3f} status {status}: {lines[:1]}")
            continue
        pod = lines[-1]
        answers[pod] = answers.get(pod, 0) + 1
    except OSError as err:
        failures.append(f"{time.time():.3f} {err!r} after {time.monotonic() - started:.2f}s")
with open(out_file + ".tmp", "w") as f:
    json.dump({"requests": requests, "failures": failures, "answers": answers}, f)
os.replace(out_file + ".tmp", out_file)
