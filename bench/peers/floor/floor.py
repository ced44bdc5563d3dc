#!/usr/bin/env python3
"""The kernel floor of the peer bench: what one write(2) per message per TCP connection costs on this machine.

No MQTT client at all: N sockets send a hand-made CONNECT, then pre-encoded PUBLISH bytes are written round-robin
at the target rate (every due message goes out each 1 ms wake-up, like fleetload's default --tick), and at QoS 1 the
PUBACKs are drained with one recv per readable socket. Whatever a real generator costs above this row is its own
(user-space) overhead; the row itself is the sender's share of loopback TCP and of waking the broker, which every
generator with one connection per device pays.

With an mqtts:// URL the same over TLS (Python's ssl module: OpenSSL, the broker certificate verified against
$FLOOR_CA, a full handshake per connection, one SSL_write per message): the kernel's share plus OpenSSL's
per-record work, without any JavaScript — the floor of a TLS generator on this machine.

usage: [FLOOR_CA=ca.pem] floor.py URL DEVICES RATE_PER_DEVICE SECONDS QOS
"""
import os
import resource
import select
import socket
import ssl
import struct
import sys
import time
from urllib.parse import urlparse


def connect_packet(client_id: bytes) -> bytes:
    vh = b"\x00\x04MQTT\x04\x02\x00\x3c"  # MQTT 3.1.1, clean session, keepalive 60 s
    body = vh + struct.pack(">H", len(client_id)) + client_id
    return bytes([0x10, len(body)]) + body


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_packet(topic: bytes, payload: bytes, qos: int, packet_id: int) -> bytes:
    body = struct.pack(">H", len(topic)) + topic + (struct.pack(">H", packet_id) if qos else b"") + payload
    return bytes([0x30 | (qos << 1)]) + remaining_length(len(body)) + body


def main() -> None:
    url, devices, rate, seconds, qos = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
    u = urlparse(url)
    tls = u.scheme in ("mqtts", "ssl", "tls")
    ctx = ssl.create_default_context(cafile=os.environ["FLOOR_CA"]) if tls else None
    socks = []
    for i in range(devices):
        s = socket.create_connection((u.hostname, u.port or (8883 if tls else 1883)))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ctx:
            s = ctx.wrap_socket(s, server_hostname=u.hostname)
        s.sendall(connect_packet(b"floor-%d" % i))
        socks.append(s)
    for s in socks:
        s.recv(4)  # CONNACK
        s.setblocking(False)
    payload = b'{"deviceId":"dev-000000","seq":1,"ts":1764288000000.000,"runId":"floor"}'.ljust(120, b" ")
    # one packet per device (QoS 1 reuses packet id 1: the broker acks each before the next is due)
    packets = [publish_packet(b"floor/dev-%06d" % i, payload, qos, 1) for i in range(devices)]
    fds = [s.fileno() for s in socks]
    by_fd = {s.fileno(): s for s in socks}
    poller = select.epoll()
    for fd in fds:
        poller.register(fd, select.EPOLLIN)
    total_rate = devices * rate
    t0 = time.monotonic()
    sent = 0
    acks = 0
    while True:
        now = time.monotonic() - t0
        if now >= seconds:
            break
        due = int(now * total_rate)
        while sent < due:
            k = sent % devices
            if tls:
                socks[k].send(packets[k])  # one TLS record; a small one always fits the socket buffer here
            else:
                os.write(fds[k], packets[k])
            sent += 1
        if qos:
            for fd, _ in poller.poll(0):
                try:
                    acks += len(by_fd[fd].recv(65536) if tls else os.read(fd, 65536)) // 4
                except (BlockingIOError, ssl.SSLWantReadError):
                    pass
        time.sleep(0.001)
    r = resource.getrusage(resource.RUSAGE_SELF)
    print(f"floor sent={sent} acks={acks} user_s={r.ru_utime:.2f} sys_s={r.ru_stime:.2f}")


if __name__ == "__main__":
    main()
