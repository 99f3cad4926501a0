"""STAND-IN for the Hugging Face hub, which cannot be reached from here.

It answers every request the way the hub answers a gated repository
(401/403 with ``X-Error-Code: GatedRepo``), per huggingface_hub's documented
error headers, so the app's gated-model path runs against real HTTP.
Run: ``python support/hub_standin.py PORT STATUS``.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_handler(status: int) -> type[BaseHTTPRequestHandler]:
    class Gated(BaseHTTPRequestHandler):
        def _refuse(self) -> None:
            body = b'{"error": "Access to model bigcode/starcoder is restricted. You must have access to it."}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Error-Code", "GatedRepo")
            self.send_header("X-Error-Message", "Access to model bigcode/starcoder is restricted.")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = _refuse

        def log_message(self, *args: object) -> None:
            pass

    return Gated


if __name__ == "__main__":
    port, status = int(sys.argv[1]), int(sys.argv[2])
    ThreadingHTTPServer(("127.0.0.1", port), make_handler(status)).serve_forever()
