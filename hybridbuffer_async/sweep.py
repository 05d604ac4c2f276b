"""Find and remove what buffers left in storage when their process could not clean up.

A buffer removes its storage in ``aclose()``, even when cancelled; a process that is
killed (``SIGKILL``, out of memory, a web server's graceful-shutdown timeout running out)
cannot, and what it was writing stays: S3 objects and incomplete multipart uploads, which
S3 bills until they are removed. Their names carry the unix time they were made at, so a
sweep can tell them by age.

From Python::

    orphans = await sweep_s3(client, "my-bucket", key_prefix="myapp/temp",
                             older_than=timedelta(hours=1), dry_run=True)

    orphans = await sweep_redis(redis_client, key_prefix="myapp:spool",
                                older_than=timedelta(hours=1))

From a shell, with the AWS CLI's options and environment (``AWS_PROFILE``,
``AWS_ENDPOINT_URL``...) for S3, a Redis URL for Redis::

    python -m hybridbuffer_async.sweep s3 --bucket my-bucket --prefix myapp/temp \\
        --older-than 1h --dry-run
    python -m hybridbuffer_async.sweep redis --url redis://localhost:6379/0 \\
        --prefix myapp:spool --older-than 1h

It prints one line per orphan (status, kind, key, when made, upload id or size, tab
separated) and a summary on stderr; it exits with 1 if something could not be listed or
removed, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .errors import StorageError
from .storage._common import Orphan
from .storage.s3._sweep import DEFAULT_AGE, sweep_s3

if TYPE_CHECKING:
    from .storage.redis import sweep_redis

__all__ = ["Orphan", "main", "parse_age", "sweep_redis", "sweep_s3"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the Redis sweep needs the redis extra, the S3 one does not.
    if name == "sweep_redis":
        from .storage.redis import sweep_redis

        return sweep_redis
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_AGE = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?[smhdw])+|[0-9]+(?:\.[0-9]+)?")


def parse_age(text: str) -> timedelta:
    """An age such as ``90`` (seconds), ``90s``, ``30m``, ``1h``, ``2d``, ``1w`` or ``1h30m``.

    :raises ValueError: if *text* is none of these
    """
    text = text.strip()
    if not _AGE.fullmatch(text):
        raise ValueError(f"an age is a number of seconds or e.g. 90s, 30m, 1h, 2d, 1h30m: {text!r}")
    if text[-1].isdigit():
        return timedelta(seconds=float(text))
    parts = re.findall(r"([0-9.]+)([smhdw])", text)
    return timedelta(seconds=sum(float(n) * _UNITS[unit] for n, unit in parts))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    run: Callable[[argparse.Namespace], list[Orphan]] = args.run
    try:
        orphans = run(args)
    except (StorageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return _report(orphans, args)


def _parser() -> argparse.ArgumentParser:
    # What every backend's sweep takes; each adds how to reach its store.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--prefix",
        default="hybridbuffer",
        help="the storage's key_prefix (default: %(default)s)",
    )
    common.add_argument(
        "--older-than",
        type=_age,
        default=DEFAULT_AGE,
        metavar="AGE",
        help="only what was made at least this long ago: 90s, 30m, 1h, 2d... (default: 1d);"
        " longer than any buffer lives",
    )
    common.add_argument("--dry-run", action="store_true", help="list only, remove nothing")

    parser = argparse.ArgumentParser(
        prog="python -m hybridbuffer_async.sweep",
        description="Find and remove what buffers left in storage when their process could"
        " not clean up (killed, crashed, shut down too soon).",
    )
    backends = parser.add_subparsers(dest="backend", required=True, metavar="BACKEND")

    s3 = backends.add_parser(
        "s3",
        parents=[common],
        help="objects and incomplete multipart uploads in an S3 bucket",
        description="Abort the incomplete multipart uploads and delete the objects that"
        " S3Storage named under the prefix, older than the age. Credentials, region and"
        " endpoint come from the usual AWS sources (environment, profile) unless given.",
    )
    s3.add_argument("--bucket", required=True, help="the storage's bucket")
    s3.add_argument("--endpoint-url", help="an S3-compatible endpoint, e.g. http://minio:9000")
    s3.add_argument("--profile", help="a named profile of the AWS configuration files")
    s3.add_argument("--region", help="the bucket's region")
    s3.set_defaults(run=_run_s3, where=lambda a: f"s3://{a.bucket}/{a.prefix.strip('/')}/")

    redis = backends.add_parser(
        "redis",
        parents=[common],
        help="keys of Redis objects, on one node or every master of a cluster",
        description="Delete the keys of the objects that RedisStorage named under the"
        " prefix, older than the age, that no buffer of this process holds.",
    )
    redis.add_argument(
        "--url",
        default="redis://localhost:6379/0",
        help="the server, as redis-py's from_url takes it (default: %(default)s)",
    )
    redis.add_argument("--cluster", action="store_true", help="the URL is a Redis Cluster node")
    redis.set_defaults(run=_run_redis, where=lambda a: f"{a.url} under {a.prefix}:")
    return parser


def _age(text: str) -> timedelta:
    try:
        return parse_age(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _run_s3(args: argparse.Namespace) -> list[Orphan]:
    from aiobotocore.session import AioSession
    from botocore.exceptions import BotoCoreError

    async def sweep() -> list[Orphan]:
        session = AioSession(profile=args.profile)
        async with session.create_client(
            "s3", endpoint_url=args.endpoint_url, region_name=args.region
        ) as client:
            return await sweep_s3(
                client,
                args.bucket,
                key_prefix=args.prefix,
                older_than=args.older_than,
                dry_run=args.dry_run,
            )

    try:
        return asyncio.run(sweep())
    except BotoCoreError as exc:  # no credentials, an unknown profile...
        raise StorageError(str(exc), backend="s3", operation="connect") from exc


def _run_redis(args: argparse.Namespace) -> list[Orphan]:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

    from .storage.redis import sweep_redis

    async def sweep() -> list[Orphan]:
        client = RedisCluster.from_url(args.url) if args.cluster else Redis.from_url(args.url)
        try:
            return await sweep_redis(
                client, key_prefix=args.prefix, older_than=args.older_than, dry_run=args.dry_run
            )
        finally:
            await client.aclose()

    return asyncio.run(sweep())


def _report(orphans: list[Orphan], args: argparse.Namespace) -> int:
    for o in orphans:
        status = "found" if args.dry_run else "removed" if o.removed else f"failed: {o.error}"
        extra = o.upload_id or ("" if o.size is None else f"{o.size} bytes")
        made = o.created.strftime("%Y-%m-%dT%H:%M:%SZ")
        print("\t".join([status, o.kind, o.key, made, extra]))
    failed = sum(o.error is not None for o in orphans)
    what = f"{len(orphans)} left by buffers at least {args.older_than} ago in {args.where(args)}"
    if args.dry_run:
        print(f"{what}; dry run: nothing removed", file=sys.stderr)
    else:
        print(f"{what}; {len(orphans) - failed} removed, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
