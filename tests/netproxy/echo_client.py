"""A test client: COUNT fresh connections (or datagrams from one socket) to IP:PORT.

    echo_client.py tcp|udp IP PORT COUNT TIMEOUT [--peer]

Prints a JSON list with each answer's server name (with --peer, "name peer-ip"), or
"refused", "timeout", "unreachable" or the error's name.
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
            data = b""
            while chunk := conn.recv(2048):
                data += chunk
            out.append(answer(data))
    except TimeoutError:
        out.append("timeout")
    except OSError as err:
        out.append(ERRORS.get(err.errno or 0, errno.errorcode.get(err.errno or 0, str(err))))
print(json.dumps(out))
