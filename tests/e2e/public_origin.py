"""One public origin in front of the product, as in production: a reverse proxy that sends
`/webhooks/twilio/status` to the backend(s) and everything else to Rasa. Twilio (the simulator) only
ever sees this origin, so both webhooks check signatures against it (PUBLIC_BASE_URL).

With several replicas it spreads requests round-robin and fails over to the next replica when one
does not answer, as a load balancer's health checks would.
"""

from __future__ import annotations

import itertools
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

STATUS_PATH = "/webhooks/twilio/status"
# hop-by-hop headers are the proxy's own business
_SKIP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


class PublicOrigin:
    def __init__(
        self, port: int, backend_urls: str | list[str], rasa_urls: str | list[str]
    ) -> None:
        self.port = port
        self.backends = [backend_urls] if isinstance(backend_urls, str) else list(backend_urls)
        self.rasas = [rasa_urls] if isinstance(rasa_urls, str) else list(rasa_urls)
        self._turns = itertools.count()
        self.url = f"http://127.0.0.1:{port}"
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                origin.forward(self)

            def do_GET(self) -> None:  # noqa: N802
                origin.forward(self)

            def log_message(self, format: str, *args: object) -> None:
                pass  # URLs and bodies stay out of the test output

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.client = httpx.Client(timeout=60)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.client.close()

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        pool = self.backends if handler.path.startswith(STATUS_PATH) else self.rasas
        start = next(self._turns)
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _SKIP}
        answer = None
        for turn in range(len(pool)):
            upstream = pool[(start + turn) % len(pool)]
            try:
                answer = self.client.request(
                    handler.command, upstream + handler.path, content=body, headers=headers
                )
                break
            except httpx.ConnectError:
                continue  # that replica is down: the next one takes the request
            except httpx.HTTPError:
                break  # it may have acted on the request: never send it twice
        if answer is None:
            handler.send_response(502)
            handler.send_header("content-length", "0")
            handler.end_headers()
            return
        handler.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in _SKIP:
                handler.send_header(key, value)
        handler.send_header("content-length", str(len(answer.content)))
        handler.end_headers()
        handler.wfile.write(answer.content)
