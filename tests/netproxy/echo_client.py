"""A test client: COUNT fresh connections (or datagrams from one socket) to IP:PORT.

    echo_client.py tcp|udp|http IP PORT COUNT TIMEOUT [--peer]

Prints a JSON list with each answer's server name (with --peer, "name peer-ip"), or
"refused", "timeout", "unreachable" or the error's name. ``http`` asks
GET /cgi-bin/hostname and answers the body's last line (the web image's pod name), or
"http <status>" for another status than 200.
"""

import errno
import json
import socket
import sys

proto, ip, port, count, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
    int(sys.argv[4]), float(sys.argv[5])
peer = "--peer" in sys.argv
ERRORS = {errno.ECONNREFUSED: "refused", errno.EHOSTUNREACH: "unreachable",
          errno.ENETUNREACH: "unreachable"}


def answer(data: bytes) -> str:
    text = data.decode()
    return text if peer else text.split(" ")[0]


out = []
udp = None
if proto == "udp":
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.settimeout(timeout)
    udp.bind(("0.0.0.0", 0))
for _ in range(count):
    try:
        if udp is not None:
            udp.sendto(b"?", (ip, port))
            out.append(answer(udp.recvfrom(2048)[0]))
            continue
        with socket.create_connection((ip, port), timeout=timeout) as conn:
            if proto == "http":
                conn.sendall(b"GET /cgi-bin/hostname HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := conn.recv(2048):
                data += chunk
            if proto == "http":
                # busybox httpd passes a CGI's own header lines (ended by "\n\n") on
                lines = data.decode(errors="replace").strip().splitlines()
                status = lines[0].split(" ")[1] if lines and " " in lines[0] else "?"
                out.append(lines[-1] if status == "200" and len(lines) > 1
                           else f"http {status}")
                continue
            out.append(answer(data))
    except TimeoutError:
        out.append("timeout")
    except OSError as err:
        out.append(ERRORS.get(err.errno or 0, errno.errorcode.get(err.errno or 0, str(err))))
print(json.dumps(out))
