"""A test endpoint: answers each TCP connection or UDP datagram with its name.

    echo_server.py tcp|udp NAME PORT
"""

import socket
import sys

proto, name, port = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
if proto == "udp":
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    while True:
        _, peer = sock.recvfrom(2048)
        sock.sendto(name + b" " + peer[0].encode(), peer)
else:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    sock.listen(128)
    while True:
        conn, peer = sock.accept()
        try:
            conn.sendall(name + b" " + peer[0].encode())
        except OSError:
            pass
        conn.close()
