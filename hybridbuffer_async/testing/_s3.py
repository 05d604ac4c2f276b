"""A real HTTP S3 on loopback: moto's server, made acceptable to aiohttp in debug mode.

moto (its server extra) and aiobotocore are imported when first used, never on import, so
that a suite which does not test S3 does not pay for them.

moto adds its own ``Server`` header next to werkzeug's, and aiohttp under asyncio debug mode
rejects a response with two of them ("Duplicate 'Server' header found"); a tiny WSGI
wrapper drops moto's.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiobotocore.session import AioSession
    from types_aiobotocore_s3 import S3Client

__all__ = [
    "DUMMY_CREDENTIALS",
    "INSTALL_HINT",
    "REGION",
    "STREAMING_CONFIG",
    "embedded_s3",
    "embedded_s3_process",
    "require_s3_extras",
    "s3_client",
]

REGION = "us-east-1"
#: moto accepts any credentials; these keep botocore from looking for real ones.
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
#: The client configuration that lets aiobotocore stream a body of unknown length
#: (``S3Storage(upload="stream")``): no payload signing, checksums only where required.
STREAMING_CONFIG: dict[str, Any] = {
    "s3": {"payload_signing_enabled": False},
    "request_checksum_calculation": "when_required",
}
INSTALL_HINT = 'pip install "hybridbuffer-async[testing]"'
_SERVER = ("moto.moto_server.werkzeug_app", "werkzeug.serving")
_CLIENT = ("aiobotocore.session",)
_NEEDED = _SERVER + _CLIENT

_StartResponse = Callable[..., Any]


def require_s3_extras(*modules: str) -> None:
    """Import *modules* (default: all the embedded S3 and its client need).

    :raises ImportError: naming the extra to install, the missing module's error chained
    """
    try:
        for name in modules or _NEEDED:
            importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(
            f"the embedded S3 needs moto's server and aiobotocore ({exc}): {INSTALL_HINT}"
        ) from exc


def _drop_server_header(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def wrapper(environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            headers = [(k, v) for k, v in headers if k.lower() != "server"]
            return start_response(status, headers, *args)

        return app(environ, start)

    return wrapper


@contextlib.contextmanager
def embedded_s3(host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve moto's S3 over HTTP on *host* from a thread of this process.

    Buckets and objects live in moto's memory, shared by every server in the process.

    :param host: the address to listen on
    :param port: the port (default: a free one)
    :return: (yields) the endpoint URL, such as ``http://127.0.0.1:41234``
    :raises ImportError: if the ``testing`` extra is not installed (the message names it)
    """
    require_s3_extras(*_SERVER)
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
    # Polled every 50 ms for shutdown (not 0.5 s): stopping it costs a test run no more.
    serve = functools.partial(server.serve_forever, poll_interval=0.05)
    thread = threading.Thread(target=serve, name="embedded-s3", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def embedded_s3_process(timeout: float = 30.0) -> Iterator[str]:
    """Serve moto's S3 from a child process, so that its CPU time and its copy of the
    data do not count in this one (benchmarks, memory measurements, a demo).

    :param timeout: seconds allowed for the server to start, and to stop
    :return: (yields) the endpoint URL
    :raises ImportError: if the ``testing`` extra is not installed (the message names it)
    :raises RuntimeError: if the server did not start
    """
    require_s3_extras(*_SERVER)
    # The child must import this package even from a source checkout that is not installed.
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    server = subprocess.Popen(
        [sys.executable, "-m", "hybridbuffer_async.testing"],
        env={**os.environ, "PYTHONPATH": path},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None
    assert server.stdout is not None
    try:
        url = server.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError("the embedded S3 process did not start")
        yield url
    finally:
        server.stdin.close()  # the server stops when its stdin closes
        try:
            server.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server.stdout.close()


_session: AioSession | None = None


@contextlib.asynccontextmanager
async def s3_client(
    endpoint_url: str, *, credentials: dict[str, str] | None = None, **config: Any
) -> AsyncIterator[S3Client]:
    """An aiobotocore S3 client for *endpoint_url* with dummy credentials.

    :param endpoint_url: the embedded S3's URL
    :param credentials: ``aws_access_key_id`` and ``aws_secret_access_key`` to use
        instead (moto checks them only with its IAM authentication turned on)
    :param config: passed to :class:`botocore.config.Config` (``s3=...``,
        ``request_checksum_calculation=...``, ``retries=...``); ``**STREAMING_CONFIG``
        gives a client that ``S3Storage(upload="stream")`` accepts
    :return: (yields) the open client; it is closed on exit
    :raises ImportError: if the ``testing`` extra is not installed (the message names it)
    """
    require_s3_extras(*_CLIENT)
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


def serve() -> None:  # pragma: no cover - runs in a child process
    """Serve until stdin closes: the endpoint URL is printed on the first line."""
    with embedded_s3() as url:
        print(url, flush=True)
        sys.stdin.read()
