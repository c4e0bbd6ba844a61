"""Serve a BentoML service with uvicorn in this one process, without BentoML's process manager.

`bentoml serve` runs its workers under circus, whose control and pub/sub endpoints listen
on loopback TCP in plaintext ZeroMQ and take no credentials: any local user could list,
stop and add processes there, which would run as the serving user. BentoML 1.4 hard-codes
those endpoints (`create_standalone_arbiter`), so this module does what `bentoml serve`
and its one worker (`_bentoml_impl.worker.service`) do for a service of one worker, in
the same order, and nothing else: BentoML's server logging, a clean metrics scratch
directory, the deployment hooks, the service's ASGI app (its middleware, traffic timeout
and concurrency limit, OpenAPI document and lifespan hooks, `get_current_service()`)
served by uvicorn over HTTPS on a socket bound here. The process listens on that port
only. SIGTERM stops it as it stopped the worker, within ``--timeout-graceful-shutdown``.
One thing differs: BentoML's per-request timeout is replaced by the edge's
(`without_bentoml_timeout`). A crashed server is not restarted: the process exits and
its supervisor sees it stopped.

    python -m services.serving.server SERVICE --host HOST --port PORT \\
        --ssl-certfile CERT --ssl-keyfile KEY [--ssl-ciphers CIPHERS] [...]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
from typing import Any


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.serving.server")
    parser.add_argument("service", help="the service's import path, module:attribute")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backlog", type=int, default=2048)
    parser.add_argument("--ssl-certfile", required=True, help="HTTPS only: always required")
    parser.add_argument("--ssl-keyfile", required=True)
    parser.add_argument("--ssl-ciphers", help="OpenSSL cipher string (uvicorn's default)")
    parser.add_argument("--timeout-keep-alive", type=int, default=5)
    parser.add_argument("--timeout-graceful-shutdown", type=int)
    return parser


def without_bentoml_timeout(app: Any) -> Any:
    """The service's app without BentoML's TimeoutMiddleware, whose timer is never
    cancelled: each answered request's future, closure and context lived until the timeout
    fired, a few thousand objects under load, and the full collections walking them stalled
    the endpoint for 20-70 ms every 2 s. `edge.Edge` times requests out instead, with a
    timer cancelled on the answer. Starlette builds its middleware stack on the first
    request, so the list can still be changed here."""
    from bentoml._internal.server.http.traffic import TimeoutMiddleware

    app.user_middleware = [m for m in app.user_middleware if m.cls is not TimeoutMiddleware]
    return app


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    address = ipaddress.ip_address(args.host)
    # Bound first, as BentoML's arbiter does: a port in use fails before the model loads.
    listener = socket.create_server(
        (args.host, args.port),
        family=socket.AF_INET6 if address.version == 6 else socket.AF_INET,
        backlog=args.backlog,
    )
    # Accepted connections inherit it: without it, a keep-alive client's every request
    # waits for the delayed ACK (about 40 ms), as behind uvicorn's pre-bound sockets.
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    import uvicorn
    from _bentoml_impl.loader import load  # type: ignore[import-untyped]
    from _bentoml_impl.server.serving import server_on_deployment  # type: ignore[import-untyped]
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.context import server_context
    from bentoml._internal.log import configure_server_logging
    from bentoml._internal.utils.uri import join_paths
    from bentoml.serving import ensure_prometheus_dir

    # Before the service is imported: BentoML's logging config disables every logger that
    # exists when it is applied, ours included.
    configure_server_logging()  # type: ignore[no-untyped-call]
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = ensure_prometheus_dir()
    server_context.worker_index = 1  # circus numbers workers from 1

    service: Any = load(args.service, standalone_load=True)
    workers = (service.config or {}).get("workers", 1)
    if workers != 1:
        parser.error(f"{args.service} asks for {workers} workers; this server runs one")
    server_on_deployment(service)
    host = f"[{address}]" if address.version == 6 else str(address)
    BentoMLContainer.remote_runner_mapping.set({service.name: f"https://{host}:{args.port}"})
    BentoMLContainer.development_mode.set(False)
    server_context.service_type = "entry_service"
    server_context.service_name = service.name
    server_context.service_routes = [
        join_paths(service.path_prefix, api.route) for api in service.apis.values()
    ]
    if service.bento is None:
        server_context.bento_name, server_context.bento_version = service.name, "not available"
    else:
        server_context.bento_name = service.bento.tag.name
        server_context.bento_version = service.bento.tag.version or "not available"

    tls: dict[str, Any] = {"ssl_certfile": args.ssl_certfile, "ssl_keyfile": args.ssl_keyfile}
    if args.ssl_ciphers is not None:
        tls["ssl_ciphers"] = args.ssl_ciphers
    config = uvicorn.Config(
        app=without_bentoml_timeout(service.to_asgi(is_main=True)),
        backlog=args.backlog,
        log_config=None,
        workers=1,
        timeout_keep_alive=args.timeout_keep_alive,
        timeout_graceful_shutdown=args.timeout_graceful_shutdown,
        server_header=False,
        **tls,
    )
    uvicorn.Server(config).run(sockets=[listener])


if __name__ == "__main__":
    main()
