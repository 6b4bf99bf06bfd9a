"""
Peers for the integration tests: scripts that run a real third-party
WebSocket implementation (or a deliberately broken server) in a subprocess,
started as C{python -m tests.peers.<script>}; the Twisted-side helpers that
start them and read their reports (L{tests.peers.harness}); in-process
Autobahn peers (L{tests.peers.autobahn_peers}); the answers txws must give
in permessage-deflate negotiations (L{tests.peers.negotiation}); and
Autobahn's echo examples ported to txws.  This package imports nothing
itself, so the scripts start quickly.
"""
