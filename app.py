"""StarCoder Playground entry point: flags → Settings → services → serve.

    python app.py                      # nano-starcoder, the embedded default
    python app.py --model starcoder --device-map auto --max-memory 0=20GiB,1=20GiB
    python app.py --backend tgi --endpoint http://localhost:8080 --model starcoder

Every flag has a PLAYGROUND_* env var; ``python app.py --help`` lists them.
"""

from __future__ import annotations

import logging
import os
import sys


def main(argv: list[str] | None = None) -> int:
    from playground.config import load_settings
    from playground.errors import PlaygroundError

    try:
        settings = load_settings(sys.argv[1:] if argv is None else argv, os.environ)
        logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        import uvicorn

        from playground.bootstrap import build_playground
        from playground.web.server import create_app

        playground, _ = build_playground(settings)
        app = create_app(playground)
    except PlaygroundError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(f"StarCoder Playground on http://{settings.host}:{settings.port} (model {settings.model})", flush=True)
    # proxy_headers off: --forwarded-for alone decides whose address X-Forwarded-For names.
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", proxy_headers=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
