"""
Abuse by fragmentation, against a real C{twistd -n txws --app echo}
process (issue 11 item 2): one-byte continuation frames up to the message
size limit on several connections at once must cost memory close to the
bytes held, not one object per fragment (which cost ~56 bytes a byte), and
C{--max-message-fragments} closes a connection that sends more fragments
than it allows with 1009.  The scenario machinery is L{tests.test_abuse}'s.
"""

from __future__ import annotations

import contextlib
import time

from tests.abusesupport import WebSocket
from tests.test_abuse import GOOD_CLIENT_SECONDS, AbuseCase, MiB, record

#: The server's default message (and frame) limit: one-byte fragments up
#: to it.
LIMIT = 1024 * 1024

#: Connections attacking at once.
CONNECTIONS = 4


def oneByteFragments(count: int) -> bytes:
    """
    @return: a binary message's first one-byte frame and C{count - 1}
        one-byte continuation frames, none of them final.
    """
    first = WebSocket.frame(0x2, b"a", fin=False)
    return first + WebSocket.frame(0x0, b"b", fin=False) * (count - 1)


class FragmentAbuseTests(AbuseCase):
    """
    One-byte fragments.
    """

    def test_oneByteFragmentsUpToTheLimit(self) -> None:
        """
        Four connections each hold a message of C{LIMIT - 1} one-byte
        fragments (the fragment limit off): the server's RSS grows by less
        than twice the bytes held plus 12 MiB, a well-behaved client is
        served meanwhile, and each message, once finished, comes back whole.
        """
        # (Keepalive off: on a loaded machine the pure-Python server may take
        # longer than a ping interval and timeout to take the attack in, and
        # the attackers answer no ping while they send.)
        server = self.startServer(
            "--app", "echo", "--max-message-fragments", "0", "--ping-interval", "0"
        )
        baseline = server.rssKiB()
        attack = oneByteFragments(LIMIT - 1)
        attackers = [WebSocket(server.port, timeout=60) for _ in range(CONNECTIONS)]
        for attacker in attackers:
            self.addCleanup(attacker.close)
        started = time.monotonic()
        for attacker in attackers:
            attacker.sock.sendall(attack)
        # Every fragment is in once a ping sent after them is answered.
        for attacker in attackers:
            attacker.send(0x9, b"sync")
            while attacker.receive().opcode != 0xA:
                pass
        held = CONNECTIONS * (LIMIT - 1)
        growth = server.rssKiB() - baseline
        latency = self.assertGoodClient(server)
        bound = 2 * held // 1024 + 12 * MiB
        self.assertLess(growth, bound, f"RSS grew by {growth} KiB holding {held} bytes")
        for attacker in attackers:
            attacker.sock.sendall(WebSocket.frame(0x0, b"", fin=True))
            echoed = attacker.receive()
            self.assertEqual((echoed.opcode, len(echoed.payload)), (0x2, LIMIT - 1))
            self.assertEqual(echoed.payload, b"a" + b"b" * (LIMIT - 2))
        record(
            "one-byte fragments up to the limit",
            connections=CONNECTIONS,
            heldBytes=held,
            rssGrowthKiB=growth,
            boundKiB=bound,
            goodClientSeconds=round(latency, 4),
            attackSeconds=round(time.monotonic() - started, 2),
        )

    def test_fragmentLimit(self) -> None:
        """
        With the default limit (65,536 frames a message), a message of more
        one-byte fragments is closed with 1009 while a well-behaved client
        is served.
        """
        server = self.startServer("--app", "echo")
        attacker = WebSocket(server.port, timeout=30)
        self.addCleanup(attacker.close)
        # (The server may close before taking it all.)
        with contextlib.suppress(OSError):
            attacker.sock.sendall(oneByteFragments(70000))
        self.assertEqual(attacker.closeCode(), 1009)
        latency = self.assertGoodClient(server)
        self.assertLess(latency, GOOD_CLIENT_SECONDS)
        self.assertEqual(server.logged("more than 65536 fragments"), 1)
        record("more fragments than --max-message-fragments", closeCode=1009,
               goodClientSeconds=round(latency, 4))
