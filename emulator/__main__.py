"""python -m emulator --port 8765 --seed demo   (or --seed 42 --guests 100000 --members 2000)"""

from __future__ import annotations

import argparse

from emulator.runner import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulator", description="Microsoft Graph tenant emulator")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", default="demo", help="'demo' or an integer for a generated tenant")
    parser.add_argument("--guests", type=int, default=None)
    parser.add_argument("--members", type=int, default=None)
    parser.add_argument("--no-limits", action="store_true", help="turn Graph's throttling limits off")
    parser.add_argument("--time-scale", type=float, default=1.0, help="shrink throttling windows (e.g. 0.01)")
    args = parser.parse_args(argv)
    serve(
        port=args.port,
        seed=args.seed,
        guests=args.guests,
        members=args.members,
        host=args.host,
        limits=not args.no_limits,
        time_scale=args.time_scale,
    )


if __name__ == "__main__":
    main()
