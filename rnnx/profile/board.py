"""The board side of `rnnx profile --rpc/--tracker`, for a board with Python and TVM's runtime:

    python -m rnnx.profile.board --host 0.0.0.0 --port 9090 [--tracker HOST:PORT --key KEY]

TVM's Python RPC server with `rnnx.board.memory` (and `rnnx.board.arch`) registered. The server runs in a
worker process and serves each session in a child forked from it; the functions are registered in the
worker before it serves, and the children are forked (not spawned), so every session's process has them
and reports its own memory, the memory of the process that runs the artifact.
"""
import argparse
import json
import multiprocessing
import platform
import signal
import sys


def register_board_functions() -> None:
    """Register `rnnx.board.memory` (() -> JSON {"VmRSS": kB, "VmHWM": kB}, as bin/rnnx-rpc-server gives)
    and `rnnx.board.arch` (() -> uname -m) in this process, make its children forked copies of it, and
    keep its server serving after a session fails."""
    import tvm_ffi
    from tvm.rpc import server

    from . import status_kb

    serving = server._serving

    def serving_past_failures(*args):
        try:
            serving(*args)
        except RuntimeError as e:  # TVM's server stops serving anyone once a client goes away mid-session
            print(f"rnnx board: session ended badly: {e}", file=sys.stderr, flush=True)

    server._serving = serving_past_failures
    tvm_ffi.register_global_func("rnnx.board.memory",
                                 lambda: json.dumps({f: status_kb(f) for f in ("VmRSS", "VmHWM")}), override=True)
    tvm_ffi.register_global_func("rnnx.board.arch", platform.machine, override=True)
    # a spawned child (the default from Python 3.14) would start without them
    multiprocessing.set_start_method("fork", force=True)


def serve(host: str, port: int, port_end: int | None = None, tracker: tuple[str, int] | None = None,
          key: str = "") -> "tvm.rpc.Server":
    """Start the server (in a worker process) on the first free port in [port, port_end); returns it (its
    `.port`; `.terminate()` stops it)."""
    from tvm import rpc

    return rpc.Server(host, port, port_end or port + 1, tracker_addr=tracker, key=key,
                      server_init_callback=register_board_functions, silent=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rnnx.profile.board", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--port", type=int, default=9090, help="first port to try")
    parser.add_argument("--port-end", type=int, default=None, help="end of the ports to try (default: port + 1)")
    parser.add_argument("--tracker", help="HOST:PORT of a tracker to register with (needs --key)")
    parser.add_argument("--key", default="", help="the key to register under, e.g. rasp5 (`rnnx targets`)")
    args = parser.parse_args(argv)
    tracker = None
    if args.tracker:
        from .rpc import parse_address

        if not args.key:
            parser.error("--tracker needs --key")
        tracker = parse_address(args.tracker, "--tracker")
    server = serve(args.host, args.port, args.port_end, tracker, args.key)
    print(f"rnnx board: RPC server on {args.host}:{server.port}"
          + (f", registered with tracker {args.tracker} as {args.key}" if tracker else ""), flush=True)
    # the server's worker and its session children outlive us unless stopped: stop them on Ctrl-C or kill
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.proc.join()
    except KeyboardInterrupt:
        pass
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
