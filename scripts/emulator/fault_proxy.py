#!/usr/bin/env python3
"""A TLS proxy on loopback that puts S3 faults into the deployed functions' requests (issue 26).

The emulator hands its `AWS_ENDPOINT_URL` to every function it runs; a test starts MiniStack
with this proxy's address there, so the functions reach the emulator through it, while the
CLI and the tests go to the emulator directly. The proxy terminates TLS with the emulator's own
certificate (the functions trust it through `SSL_CERT_FILE`), reads each HTTP/1.1 request, and
either forwards it on a TLS connection of its own or, for a share of the S3 requests signed with
temporary credentials (a function's role session: `Credential=ASIA.../s3/aws4_request`),
injects a fault:

- `slowdown`: 503 SlowDown, as S3 answers when throttling; S3 did nothing.
- `internal`: 500 InternalError; S3 did nothing.
- `reset`: the connection is reset (TCP RST) before the request reaches S3; S3 did nothing.
- `reset-after`: the request reaches S3 and is carried out, then the connection is reset before
  the answer reaches the function: the function cannot tell whether its write happened, and its
  SDK sends the request again (a conditional write is then refused: it already happened).

What to inject is read from a JSON file for each request (`{"rate": 0.05, "kinds":
["slowdown", "internal", "reset", "reset-after"]}`); without the file, everything passes. Each
fault is counted as a line `<kind> <method> <path>` in `<file>.log`.

HTTP framing is h11's (a dependency of the emulator's own server, hypercorn): the proxy only
sees whole requests and responses, and never reads or changes a signature.

    fault_proxy.py --port P --upstream 127.0.0.1:Q --cert CERT --key KEY --faults FILE
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import ssl
import struct
import sys

import h11

FAULT_BODIES = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "internal": (500, "InternalError", "We encountered an internal error. Please try again."),
}


class Faults:
    """The faults file: read for each request, so a test turns faults on and off at will."""

    def __init__(self, path: str):
        self.path = path

    def pick(self, request: h11.Request) -> str | None:
        try:
            with open(self.path, encoding="utf-8") as f:
                spec = json.load(f)
        except (OSError, ValueError):
            return None
        auth = dict(request.headers).get(b"authorization", b"").decode("latin-1")
        if "Credential=ASIA" not in auth or "/s3/aws4_request" not in auth:
            return None
        if random.random() >= float(spec.get("rate", 0)):
            return None
        kind = random.choice(spec.get("kinds") or ["slowdown"])
        with open(self.path + ".log", "a", encoding="utf-8") as f:
            f.write(f"{kind} {request.method.decode()} {request.target.decode('latin-1')}\n")
        return kind


async def next_event(conn: h11.Connection, reader: asyncio.StreamReader):
    """The next HTTP event on `conn`, reading from `reader` as h11 needs."""
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await reader.read(65536))


async def read_message(conn: h11.Connection, reader: asyncio.StreamReader, writer=None):
    """A whole request (or response): its head and body. `None` when the peer closed an idle
    connection. On a server connection, answers `Expect: 100-continue` so the body comes."""
    head = await next_event(conn, reader)
    if isinstance(head, h11.ConnectionClosed):
        return None
    while isinstance(head, h11.InformationalResponse):  # 100 Continue from upstream
        head = await next_event(conn, reader)
    if writer is not None and conn.they_are_waiting_for_100_continue:
        writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
    body = bytearray()
    while True:
        event = await next_event(conn, reader)
        if isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return head, bytes(body)
        else:
            raise h11.RemoteProtocolError(f"unexpected {event!r}")


def reset(writer: asyncio.StreamWriter) -> None:
    """Closes the connection with a TCP reset (linger 0), no TLS close: what a client sees when
    a connection is cut."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def error_response(conn: h11.Connection, kind: str) -> bytes:
    status, code, message = FAULT_BODIES[kind]
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>pdcase-fault</RequestId></Error>").encode()
    return (conn.send(h11.Response(status_code=status, headers=[
        ("content-type", "application/xml"), ("content-length", str(len(body)))]))
        + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))


class Proxy:
    def __init__(self, upstream: tuple[str, int], cert: str, faults: Faults):
        self.upstream = upstream
        self.faults = faults
        self.client_tls = ssl.create_default_context(cafile=cert)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = h11.Connection(h11.SERVER)
        up = None
        try:
            while True:
                message = await read_message(client, reader, writer)
                if message is None:
                    break
                request, body = message
                kind = self.faults.pick(request)
                if kind == "reset":
                    reset(writer)
                    return
                if kind in FAULT_BODIES:
                    writer.write(error_response(client, kind))
                else:
                    if up is None:
                        up_reader, up_writer = await asyncio.open_connection(
                            *self.upstream, ssl=self.client_tls, server_hostname=self.upstream[0])
                        up = (h11.Connection(h11.CLIENT), up_reader, up_writer)
                    conn, up_reader, up_writer = up
                    up_writer.write(conn.send(request) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
                    response = await read_message(conn, up_reader)
                    if response is None:
                        raise h11.RemoteProtocolError("the emulator closed the connection")
                    if kind == "reset-after":
                        reset(writer)
                        return
                    head, response_body = response
                    writer.write(client.send(h11.Response(status_code=head.status_code, headers=head.headers,
                                                          reason=head.reason))
                                 + (client.send(h11.Data(data=response_body)) if response_body else b"")
                                 + client.send(h11.EndOfMessage()))
                    if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                        conn.start_next_cycle()
                    else:
                        up_writer.close()
                        up = None
                await writer.drain()
                if client.our_state is not h11.DONE or client.their_state is not h11.DONE:
                    break
                client.start_next_cycle()
        except (h11.ProtocolError, ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as e:
            print(f"fault_proxy: connection ended: {e!r}", file=sys.stderr)
        finally:
            if up is not None:
                up[2].close()
            if not writer.transport.is_closing():
                writer.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True, help="HOST:PORT of the emulator (HTTPS)")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--faults", required=True)
    args = ap.parse_args()
    host, port = args.upstream.rsplit(":", 1)
    proxy = Proxy((host, int(port)), args.cert, Faults(args.faults))
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(args.cert, args.key)
    server_tls.set_alpn_protocols(["http/1.1"])
    server = await asyncio.start_server(proxy.serve, "127.0.0.1", args.port, ssl=server_tls)
    print(f"fault_proxy: listening on 127.0.0.1:{args.port}, forwarding to {args.upstream}", file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
