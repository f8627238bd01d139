"""Websocket framing for exec: RFC 6455 frames carrying the Kubernetes channel protocols.

``v5.channel.k8s.io`` and ``v4.channel.k8s.io``: each data message starts with a channel byte
(0 stdin, 1 stdout, 2 stderr, 3 error/status, 4 resize; v5 adds 255, "close stream"). The server
end only: ``accept_key`` answers the handshake, ``WebSocket`` reads and writes frames,
``read_stdin`` collects channel 0 and ``exit_status`` is the Status sent on channel 3.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
from typing import Any

MAX_FRAME = 256 * 1024 * 1024

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
STREAM_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")  # in order of preference
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
STDIN, STDOUT, STDERR, ERROR, CLOSE_STREAM = 0, 1, 2, 3, 255


class WebSocket:
    """The server end of one websocket: enough framing for exec's channel streams."""

    def __init__(self, rfile: Any, sock: socket.socket):
        self.rfile = rfile
        self.sock = sock
        self.client_closed = False
        self.close_sent = False

    def _read(self, size: int) -> bytes:
        data = self.rfile.read(size) if size else b""
        if data is None or len(data) < size:
            raise EOFError("websocket closed")
        return data

    def receive(self) -> tuple[int, bytes]:
        """The next data message, or (close opcode, payload); pings are answered here."""
        opcode, message = OP_BINARY, b""
        while True:
            head = self._read(2)
            final, frame_opcode, length = head[0] & 0x80, head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self._read(8))[0]
            if length > MAX_FRAME:
                raise EOFError("websocket frame too large")
            mask = self._read(4) if head[1] & 0x80 else b""
            payload = _unmask(self._read(length), mask) if mask else self._read(length)
            if frame_opcode == OP_CLOSE:
                self.client_closed = True
                if not self.close_sent:
                    self.send(OP_CLOSE, payload[:2])
                return OP_CLOSE, payload
            if frame_opcode == OP_PING:
                self.send(OP_PONG, payload)
                continue
            if frame_opcode == OP_PONG:
                continue
            if frame_opcode != OP_CONTINUATION:
                opcode, message = frame_opcode, b""
            message += payload
            if final:
                return opcode, message

    def send(self, opcode: int, payload: bytes) -> None:
        if opcode == OP_CLOSE:
            self.close_sent = True
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x80 | opcode, size)
        elif size < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 126, size)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 127, size)
        self.sock.sendall(header + payload)

    def send_channel(self, channel: int, data: bytes) -> None:
        self.send(OP_BINARY, bytes([channel]) + data)


def _unmask(payload: bytes, mask: bytes) -> bytes:
    size = len(payload)
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")


def read_stdin(ws: WebSocket) -> bytes:
    """Channel 0 until the client closes it (v5: [255, 0]; v4: the websocket close)."""
    chunks = []
    while True:
        try:
            opcode, payload = ws.receive()
        except EOFError:
            break
        if opcode == OP_CLOSE:
            break
        if not payload:
            continue
        channel, data = payload[0], payload[1:]
        if channel == STDIN:
            chunks.append(data)
        elif channel == CLOSE_STREAM and data[:1] == bytes([STDIN]):
            break
    return b"".join(chunks)


def exit_status(code: int) -> dict[str, Any]:
    """What exec sends on channel 3 when the command ends."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit status {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` answer to a client's ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()
