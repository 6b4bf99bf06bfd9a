"""
The benchmark: txws beside the other WebSocket servers for Python, and
beside the cost of Twisted's own transport.  Run it with
C{python -m bench.run}; see C{bench/README.md}.
"""
