"""Command line of the test harness: engines and the demo.

    python -m harness install [FLAVOUR ...]
    python -m harness start NAME FLAVOUR [--tls]
    python -m harness stop NAME | stop-all      (stop-all: the registries of harness.registry too)
    python -m harness demo
"""

from __future__ import annotations

import argparse
import json
import sys

from harness import demo, engines, fleet, registry


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m harness")
    commands = parser.add_subparsers(dest="command", required=True)
    install = commands.add_parser("install", help="install engine flavours (all by default, with sshd, sudo and a "
                                                  "registry)")
    install.add_argument("flavours", nargs="*", choices=engines.FLAVOURS)
    start = commands.add_parser("start", help="start one private daemon")
    start.add_argument("name")
    start.add_argument("flavour", choices=engines.FLAVOURS)
    start.add_argument("--tls", action="store_true", help="also listen on tcp://127.0.0.1:PORT with --tlsverify")
    stop = commands.add_parser("stop", help="stop a daemon started here, by name")
    stop.add_argument("name")
    commands.add_parser("stop-all", help="stop every daemon and registry started here")
    commands.add_parser("demo", help="the README's main job on three local engines")
    args = parser.parse_args(argv)

    if args.command == "install":
        for flavour in args.flavours or engines.FLAVOURS:
            engines.install(flavour)
        if not args.flavours:
            fleet.install()  # openssh-server and sudo, for the fleet reached over SSH
            registry.install()  # Debian's docker-registry, for images pulled from a registry
    elif args.command == "start":
        print(json.dumps(engines.start(args.flavour, args.name, tls=args.tls).as_dict()))
    elif args.command == "stop":
        for engine in engines.running():
            if engine.name == args.name:
                engines.stop(engine)
    elif args.command == "stop-all":
        engines.stop_all()
        registry.stop_all()
    elif args.command == "demo":
        return demo.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
