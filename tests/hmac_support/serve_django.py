"""
Run the Django receiver on 127.0.0.1, on a port the OS picks.

The first line on stdout is the bound port; the server then answers requests
until it is killed, or exits by itself after C{--lifetime} seconds so that a
crashed test run cannot leave it behind.  Usage::

    python -m tests.hmac_support.serve_django [--lifetime SECONDS]
"""

from __future__ import annotations

import argparse
import os
import threading
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server


class QuietHandler(WSGIRequestHandler):
    """
    A request handler that does not log every request to stderr.
    """

    def log_message(self, format: str, *args: Any) -> None:
        """
        Stay silent.
        """


def main() -> None:
    """
    Bind, print the port, serve.
    """
    parser = argparse.ArgumentParser()
    parser.add_argument("--lifetime", type=float, default=60.0)
    lifetime = parser.parse_args().lifetime
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.hmac_support.django_receiver.settings")
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
    server = make_server("127.0.0.1", 0, application, handler_class=QuietHandler)
    watchdog = threading.Timer(lifetime, os._exit, (3,))
    watchdog.daemon = True
    watchdog.start()
    print(server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
