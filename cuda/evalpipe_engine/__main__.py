"""`python -m evalpipe_engine serve | http --port P --model M [...] | write-preset DIR [--seed N] | info`
(PYTHONPATH=cuda)."""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evalpipe_engine", description="evalpipe's model engine")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the JSON-lines protocol server on stdio (docs/engine-protocol.md)")
    wp = sub.add_parser("write-preset", help="write preset:tiny-starcoder2 as a local HF model directory")
    wp.add_argument("directory")
    wp.add_argument("--seed", type=int, default=0, help="weight seed (default 0)")
    sub.add_parser("info", help="print versions and device facts as JSON")
    from .http_server.config import add_arguments

    http = sub.add_parser("http", help="serve one model over an OpenAI-compatible HTTP API (docs/engine-http.md)")
    add_arguments(http)
    args = parser.parse_args(argv)

    if args.command == "serve":
        from .server import serve

        return serve()
    if args.command == "http":
        from .http_server.app import serve_http
        from .http_server.config import config_from_args

        return serve_http(config_from_args(args, http))
    if args.command == "write-preset":
        from .presets import write_preset_dir

        if args.seed < 0:
            parser.error("--seed must be >= 0")
        out = write_preset_dir(args.directory, args.seed)
        print(out, file=sys.stderr)
        return 0
    from .system_info import system_info

    print(json.dumps(system_info(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
