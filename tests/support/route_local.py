"""Test-only mitmproxy script: send every upstream connection to the local test servers.

It acts in ``server_connect``, after linkwarn has decided, so the flows keep
their real (reserved) host names and nothing ever dials out.
"""

import os


class RouteLocal:
    def server_connect(self, data):  # type: ignore[no-untyped-def]
        port = int(
            os.environ[
                "LINKWARN_TEST_HTTPS_PORT" if data.server.address[1] == 443 else "LINKWARN_TEST_HTTP_PORT"
            ]
        )
        data.server.address = ("127.0.0.1", port)


addons = [RouteLocal()]
