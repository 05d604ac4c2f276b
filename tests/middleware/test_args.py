"""Construction: argument checks, key hygiene, and what happens without an extra."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import hybridbuffer_async
from hybridbuffer_async.middleware import Encryption, Gzip, Middleware, Zstd

ROOT = Path(hybridbuffer_async.__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("factory", "kwargs", "error", "message"),
    [
        (Gzip, {"level": 10}, ValueError, "between 0 and 9"),
        (Gzip, {"level": -1}, ValueError, "between 0 and 9"),
        (Gzip, {"level": "6"}, TypeError, "level must be an int"),
        (Gzip, {"level": True}, TypeError, "level must be an int"),
        (Zstd, {"level": 23}, ValueError, "between"),
        (Zstd, {"level": -(1 << 17) - 1}, ValueError, "between"),
        (Zstd, {"level": 3.0}, TypeError, "level must be an int"),
        (Encryption, {"cipher": "aes-128-gcm"}, ValueError, "unknown cipher 'aes-128-gcm'"),
        (Encryption, {"cipher": b"aes-256-gcm"}, TypeError, "cipher must be a str"),
        (Encryption, {"key": b"short"}, ValueError, "32 bytes"),
        (Encryption, {"key": bytes(33)}, ValueError, "got 33 bytes"),
        (Encryption, {"key": "k" * 32}, TypeError, "not str"),
        (Encryption, {"key": 12345}, TypeError, "key must be bytes"),
    ],
)
def test_bad_arguments_are_refused(
    factory: Any, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        factory(**kwargs)


def test_valid_arguments_are_accepted() -> None:
    assert Gzip(0).level == 0
    assert Gzip(9).level == 9
    assert Zstd(22).level == 22
    assert Zstd(-5).level == -5
    assert Encryption(bytearray(32)).cipher == "aes-256-gcm"
    assert Encryption(memoryview(bytes(32)), cipher="chacha20-poly1305").cipher == (
        "chacha20-poly1305"
    )
    for mw in (Gzip(), Zstd(), Encryption()):
        assert isinstance(mw, Middleware)


def test_wrong_size_key_is_not_echoed_in_the_error() -> None:
    key = b"secret-key-material-31-bytes!!!"
    with pytest.raises(ValueError, match="got 31 bytes") as info:
        Encryption(key)
    assert b"secret" not in str(info.value).encode()


@pytest.mark.parametrize("given", [True, False])
def test_key_never_appears_in_repr_str_or_vars(given: bool) -> None:
    key = Encryption.generate_key()
    mw = Encryption(key) if given else Encryption()
    texts = [repr(mw), str(mw), f"{mw}"]
    texts += [repr(getattr(mw, name)) for name in mw.__slots__]
    assert repr(mw) == f"Encryption(cipher='aes-256-gcm', key=<{'given' if given else 'random'}>)"
    if given:
        for text in texts:
            assert key.hex() not in text
            assert repr(key) not in text


def test_encryption_refuses_to_be_pickled() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Encryption())


def test_random_keys_differ_per_instance() -> None:
    assert Encryption.generate_key() != Encryption.generate_key()
    assert len(Encryption.generate_key()) == 32
    a, b = Encryption(), Encryption()
    assert a._key._value != b._key._value


def test_reprs_name_the_settings() -> None:
    assert repr(Gzip(4)) == "Gzip(level=4)"
    assert repr(Zstd(7)) == "Zstd(level=7)"


def test_unknown_name_is_an_attribute_error() -> None:
    import hybridbuffer_async.middleware as middleware

    with pytest.raises(AttributeError, match="Brotli"):
        middleware.Brotli  # noqa: B018
    assert {"Gzip", "Zstd", "Encryption", "Middleware"} <= set(dir(middleware))


def _run_without(module: str, code: str) -> subprocess.CompletedProcess[str]:
    prelude = f"import sys; sys.modules[{module!r}] = None\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", "-c", prelude + code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("module", "name", "extra"),
    [("zstandard", "Zstd", "zstd"), ("cryptography", "Encryption", "crypto")],
)
def test_missing_extra_raises_import_error_naming_it_only_when_used(
    module: str, name: str, extra: str
) -> None:
    code = (
        "from hybridbuffer_async.middleware import Gzip, Middleware\n"
        "import hybridbuffer_async\n"
        "print('base ok')\n"
        f"from hybridbuffer_async.middleware import {name}\n"
    )
    result = _run_without(module, code)
    assert result.stdout == "base ok\n"
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError:"), result.stderr
    assert f'pip install "hybridbuffer-async[{extra}]"' in last
