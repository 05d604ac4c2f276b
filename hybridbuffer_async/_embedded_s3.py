"""A real HTTP S3 on loopback, for tests, the demo and benchmarks (not public API).

It serves moto's S3 (a test-only dependency, imported lazily) through werkzeug in a thread.
moto adds its own ``Server`` header next to werkzeug's, and aiohttp under asyncio debug
mode rejects a response with two of them; a tiny WSGI wrapper drops moto's.

Run ``python -m hybridbuffer_async._embedded_s3`` to serve one in its own process: it prints
the endpoint URL on one line and serves until stdin closes or it is terminated.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiobotocore.session import AioSession
    from types_aiobotocore_s3 import S3Client

__all__ = ["DUMMY_CREDENTIALS", "REGION", "embedded_s3", "s3_client"]

REGION = "us-east-1"
#: moto accepts any credentials; these keep botocore from looking for real ones.
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

_StartResponse = Callable[..., Any]


def _drop_server_header(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def wrapper(environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            headers = [(k, v) for k, v in headers if k.lower() != "server"]
            return start_response(status, headers, *args)

        return app(environ, start)

    return wrapper


@contextlib.contextmanager
def embedded_s3(host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve moto's S3 on *host* (a free port unless *port* is given) in a thread.

    :return: (yields) the endpoint URL, such as ``http://127.0.0.1:41234``
    :raises ImportError: if ``moto[server]`` is not installed
    """
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class QuietHandler(MotoRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass  # one line per request would drown test and benchmark output

    app = _drop_server_header(DomainDispatcherApplication(create_backend_app))
    server = make_server(host, port, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="embedded-s3", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


_session: AioSession | None = None


@contextlib.asynccontextmanager
async def s3_client(
    endpoint_url: str, *, credentials: dict[str, str] | None = None, **config: Any
) -> AsyncIterator[S3Client]:
    """An aiobotocore S3 client for *endpoint_url* with dummy credentials.

    :param credentials: ``aws_access_key_id`` and ``aws_secret_access_key`` to use
        instead (moto checks them only with its IAM authentication turned on)
    :param config: passed to :class:`botocore.config.Config` (``s3=...``,
        ``request_checksum_calculation=...``, ``retries=...``)
    """
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    global _session
    config.setdefault("retries", {"max_attempts": 2, "mode": "standard"})
    # One session for all clients: it caches the service model, which takes ~0.3 s to load.
    session = _session = _session or get_session()
    keys = credentials or DUMMY_CREDENTIALS
    async with session.create_client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        config=AioConfig(**config),
        aws_access_key_id=keys["aws_access_key_id"],
        aws_secret_access_key=keys["aws_secret_access_key"],
    ) as client:
        yield client


#: The client configuration that lets aiobotocore stream a body of unknown length.
STREAMING_CONFIG: dict[str, Any] = {
    "s3": {"payload_signing_enabled": False},
    "request_checksum_calculation": "when_required",
}


def main() -> None:  # pragma: no cover - used by benchmarks in another process
    with embedded_s3() as url:
        print(url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":  # pragma: no cover
    main()
