"""The sweep finds and removes what a killed process left, and nothing else."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hybridbuffer_async.sweep import Orphan, main, parse_age, sweep_s3

from .s3_helpers import list_keys, list_uploads
from .s3_proxy import AwsRulesProxy, Fault

ROOT = Path(__file__).parents[2]
#: The AWS CLI's environment, as the sweep's command line reads it; no user profile.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


async def test_what_a_killed_process_left_is_found_and_removed_by_the_command_line(
    s3_endpoint: str, client: Any, bucket: str
) -> None:
    prefix = "myapp/spool"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.s3.killed_writer",
        *(s3_endpoint, bucket, prefix),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    assert child.stdout is not None
    try:
        assert await asyncio.wait_for(child.stdout.readline(), 60) == b"uploading\n"
    finally:
        child.send_signal(signal.SIGKILL)  # nothing of it runs again: no cleanup
        await child.communicate()
    assert child.returncode == -signal.SIGKILL
    [key] = await list_keys(client, bucket)
    [upload] = (await client.list_multipart_uploads(Bucket=bucket))["Uploads"]

    found = await sweep_s3(client, bucket, key_prefix=prefix, older_than=0, dry_run=True)
    assert sorted((o.kind, o.key, o.upload_id, o.removed) for o in found) == [
        ("multipart upload", upload["Key"], upload["UploadId"], False),
        ("object", key, None, False),
    ]
    assert await sweep_s3(client, bucket, key_prefix=prefix) == []  # not a day old yet
    assert len(await list_keys(client, bucket)) == len(await list_uploads(client, bucket)) == 1

    sweep = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "hybridbuffer_async.sweep", "s3", "--endpoint-url", s3_endpoint),
        *("--bucket", bucket, "--prefix", prefix, "--older-than", "0s"),
        env={**os.environ, **AWS_ENV},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(sweep.communicate(), 60)
    print(out.decode(), err.decode())
    assert sweep.returncode == 0
    lines = sorted(line.split("\t")[:3] for line in out.decode().splitlines())
    assert lines == [["removed", "multipart upload", upload["Key"]], ["removed", "object", key]]
    assert await list_keys(client, bucket) == []
    assert await list_uploads(client, bucket) == []


async def test_the_sweep_leaves_young_objects_and_names_not_ours_alone(
    client: Any, bucket: str
) -> None:
    now = int(time.time())

    def name(ts: int) -> str:
        return f"{ts}-{secrets.token_hex(8)}.bin"

    old, young = name(now - 7200), name(now - 60)
    keep = [
        f"spool/{young}",  # a live buffer's, maybe
        f"spool/notes-{old}",  # not a name S3Storage gives
        f"spool/deeper/{old}",  # another storage's prefix
        f"other/{old}",
        old,
    ]
    for key in [f"spool/{old}", *keep]:
        await client.put_object(Bucket=bucket, Key=key, Body=b"x")
    await client.create_multipart_upload(Bucket=bucket, Key=f"spool/{name(now - 3601)}")
    young_upload = await client.create_multipart_upload(Bucket=bucket, Key=f"spool/{young}")

    removed = await sweep_s3(client, bucket, key_prefix="/spool/", older_than=timedelta(hours=1))
    assert [(o.kind, o.removed, o.error) for o in removed] == [
        ("object", True, None),
        ("multipart upload", True, None),
    ]
    assert all(isinstance(o, Orphan) and o.backend == "s3" for o in removed)
    assert removed[0].created.timestamp() == now - 7200
    assert removed[0].size == 1
    assert sorted(await list_keys(client, bucket)) == sorted(keep)
    assert await list_uploads(client, bucket) == [f"spool/{young}"]
    for key in keep:
        await client.delete_object(Bucket=bucket, Key=key)
    await client.abort_multipart_upload(
        Bucket=bucket, Key=f"spool/{young}", UploadId=young_upload["UploadId"]
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("30m", 1800), ("1h30m", 5400), ("2d", 172800), ("0.5h", 1800)],
)
def test_ages_read_as_the_command_line_takes_them(text: str, seconds: float) -> None:
    assert parse_age(text) == timedelta(seconds=seconds)


def test_an_age_it_cannot_read_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["s3", "--bucket", "spool", "--older-than", "1x"])
    assert info.value.code == 2
    assert "--older-than: an age is a number of seconds or e.g. 90s" in capsys.readouterr().err


async def test_the_lifecycle_rule_of_the_docs_is_one_s3_takes(client: Any, bucket: str) -> None:
    doc = (ROOT / "docs" / "s3.md").read_text()
    rule = json.loads(doc.split("```json\n")[-1].split("```")[0])  # the last JSON block
    await client.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [{**rule["Rules"][0], "ID": "other"}]}
    )
    await client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=rule)
    got = await client.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert got["Rules"] == rule["Rules"]  # the rule as written; the one before it replaced


async def test_what_the_sweep_cannot_remove_is_reported_not_hidden(
    faulty: tuple[AwsRulesProxy, Any], client: Any, bucket: str
) -> None:
    proxy, proxied = faulty
    old = f"spool/{int(time.time()) - 7200}-{secrets.token_hex(8)}.bin"
    await client.put_object(Bucket=bucket, Key=old, Body=b"x")
    upload = await client.create_multipart_upload(Bucket=bucket, Key=old)
    # Neither abort_multipart_upload (DELETE) nor delete_objects (POST ?delete) allowed.
    proxy.fault = lambda m, t: Fault(403, "AccessDenied") if m != "GET" else None
    found = await sweep_s3(proxied, bucket, key_prefix="spool", older_than=3600)
    assert [(o.kind, o.removed) for o in found] == [
        ("multipart upload", False),
        ("object", False),
    ]
    assert all("[AccessDenied]" in str(o.error) for o in found)
    await client.delete_object(Bucket=bucket, Key=old)
    await client.abort_multipart_upload(Bucket=bucket, Key=old, UploadId=upload["UploadId"])
