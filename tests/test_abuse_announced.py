"""
Abuse scenario for issue 11, item 3: connections that announce large
frames and send almost nothing must cost what they sent, not what they
announced, on both code paths (the C extension and C{TXWS_NO_EXTENSIONS=1}).

Each run starts a real C{twistd -n txws --app echo} on 127.0.0.1 (with the
helpers of L{tests.abusesupport} and L{tests.test_abuse}), opens 300
WebSocket connections, and on each sends the header of a binary frame
announcing one byte under the 1 MiB frame and message limits followed by
16 bytes of its payload.  Before the fix, the pure-Python server allocated
(and zero-filled) the announced 1 MiB for every one of them, about 300 MiB;
now both paths hold what arrived.
"""

from __future__ import annotations

import os
import time
from unittest import mock

from tests.abusesupport import Server, WebSocket, closeAll, raiseFileLimit
from tests.support import requireSpeedups
from tests.test_abuse import AbuseCase, MiB, record
from txws.options import WebSocketOptions

CONNECTIONS = 300
"""Offending connections."""

ANNOUNCED = WebSocketOptions.maxFramePayloadSize - 1
"""What each announces: just under the default frame (and message) limit."""

SENT = 16
"""Payload bytes each sends."""

GROWTH_BOUND_MiB = 40
"""The server's RSS may grow by less than this (the 300 frames announce ~300 MiB)."""

COMPLETED = 5
"""Offenders that then send the rest of their frame and get it echoed."""


class AnnouncedFrameAbuseTests(AbuseCase):
    """
    300 connections each announcing a frame of 1 MiB - 1 bytes and sending
    16: the server grows by less than 40 MiB and a well-behaved client
    echoes within 2 s, with and without the C extension; frames completed
    afterwards are echoed whole.
    """

    def startEcho(self, pure: bool) -> Server:
        """
        Start C{--app echo} on the pure-Python path or with the extension,
        and check that the process really runs that path.

        @param pure: whether to start it with C{TXWS_NO_EXTENSIONS=1}.
        @return: the server.
        """
        with mock.patch.dict(os.environ):
            if pure:
                os.environ["TXWS_NO_EXTENSIONS"] = "1"
            else:
                os.environ.pop("TXWS_NO_EXTENSIONS", None)
            server = self.startServer("--app", "echo")
        with open(f"/proc/{server.pid}/maps") as f:
            mapped = "_speedups" in f.read()
        self.assertEqual(mapped, not pure, "the server does not run the path under test")
        return server

    def announceAndStall(self, pure: bool) -> None:
        """
        The scenario, on one path.

        @param pure: whether the server runs without the extension.
        """
        # Else the scenario would test the limits, not the assembler.
        self.assertLessEqual(ANNOUNCED, WebSocketOptions.maxMessagePayloadSize)
        raiseFileLimit(4096)
        server = self.startEcho(pure)
        path = "pure Python" if pure else "C extension"
        baseline = server.rssKiB()
        offenders = [WebSocket(server.port) for _ in range(CONNECTIONS)]
        self.addCleanup(closeAll, [client.sock for client in offenders])
        body = os.urandom(ANNOUNCED)
        frame = WebSocket.frame(2, body, declaredLength=ANNOUNCED)
        header = len(frame) - ANNOUNCED
        for client in offenders:
            client.sock.sendall(frame[: header + SENT])
        # The server has read every offender's bytes once it answers a
        # client connecting after them; RSS is then sampled for 1 s.
        latency = self.assertGoodClient(server)
        peak = server.rssKiB()
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            peak = max(peak, server.rssKiB())
            time.sleep(0.05)
        latency = max(latency, self.assertGoodClient(server))
        self.assertLess(peak - baseline, GROWTH_BOUND_MiB * MiB,
                        f"{path}: RSS grew by {(peak - baseline) // MiB} MiB")
        self.assertTrue(server.running())
        # The stalled frames are still being assembled: finished, they echo.
        for client in offenders[:COMPLETED]:
            client.sock.sendall(frame[header + SENT:])
        for client in offenders[:COMPLETED]:
            client.sock.settimeout(10)
            echoed = client.receive()
            self.assertEqual((echoed.opcode, len(echoed.payload)), (2, ANNOUNCED))
            self.assertTrue(echoed.payload == body, f"{path}: the echo differs")
        self.assertTrue(server.running())
        record(f"announced 1 MiB frames, 16 bytes sent (echo, {path})",
               connections=CONNECTIONS, announcedBytes=ANNOUNCED, sentBytes=SENT,
               announcedTotalMiB=round(CONNECTIONS * ANNOUNCED / 2**20),
               rssGrowthMiB=round((peak - baseline) / MiB, 1),
               worstEchoSeconds=round(latency, 3), completedAndEchoed=COMPLETED)

    def test_purePython(self) -> None:
        """
        The pure-Python server (C{TXWS_NO_EXTENSIONS=1}) holds what arrived.
        """
        self.announceAndStall(pure=True)

    def test_extension(self) -> None:
        """
        The server with the C extension holds what arrived.
        """
        requireSpeedups(self)
        self.announceAndStall(pure=False)
