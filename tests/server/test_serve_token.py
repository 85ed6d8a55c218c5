"""The server's token, where it is kept: the environment, the keychain, else a private file in the
data dir. Without a keychain and without HEARTH_SERVE_TOKEN, `hearth serve` still starts and
accepts the token `--show-token` prints; a token file other users can read is refused, saying
how to fix it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest
from serve_process import Served, hearth

from app.core.errors import ServeError
from app.server.token import TOKEN_ENV, server_token, token_file

NO_KEYCHAIN = {TOKEN_ENV: "", "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


@pytest.fixture(autouse=True)
def _no_token_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)


def test_the_token_is_made_once_and_kept_in_the_keychain(memory_keychain, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    first = server_token(tmp_path)
    assert len(first.value) > 40 and first.kept == "in your keychain"
    assert server_token(tmp_path) == first  # made once, then read back
    assert list(memory_keychain.saved.values()) == [first.value]
    assert not token_file(tmp_path).exists()  # never also on disk
    monkeypatch.setenv(TOKEN_ENV, "from-the-environment")
    assert server_token(tmp_path).value == "from-the-environment"


def test_without_a_keychain_the_token_is_kept_in_a_private_file(no_keychain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    old = os.umask(0)  # a careless umask still gets a private file
    try:
        first = server_token(tmp_path / "data")
    finally:
        os.umask(old)
    path = token_file(tmp_path / "data")
    assert len(first.value) > 40 and first.kept == f"in {path}"
    assert path.read_text().strip() == first.value
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert server_token(tmp_path / "data") == first
    assert [p.name for p in path.parent.iterdir()] == ["serve-token"]  # no temporary file left behind


def test_a_token_file_kept_before_a_keychain_appeared_stays_in_use(tmp_path: Path) -> None:
    import keyring
    from keychains import MemoryKeyring
    from keyring.backends import fail

    old = keyring.get_keyring()
    try:
        keyring.set_keyring(fail.Keyring())
        before = server_token(tmp_path)
        keyring.set_keyring(MemoryKeyring())
        assert server_token(tmp_path) == before  # clients given the file's token keep working
    finally:
        keyring.set_keyring(old)


@pytest.mark.slow
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620], ids=["group-readable", "world-readable", "group-writable"])
def test_a_token_file_others_can_read_is_refused_with_the_fix(no_keychain, tmp_path: Path, mode: int) -> None:  # type: ignore[no-untyped-def]
    token = server_token(tmp_path)
    path = token_file(tmp_path)
    path.chmod(mode)
    with pytest.raises(ServeError, match=f"can be read or changed by other users.*chmod 600 {path}"):
        server_token(tmp_path)
    r = hearth(tmp_path, "serve", "--show-token", env=NO_KEYCHAIN)
    assert r.returncode == 2 and f"chmod 600 {path}" in r.stderr and token.value not in r.stdout + r.stderr
    path.chmod(0o600)  # the fix the message gives
    assert server_token(tmp_path) == token


def test_a_token_file_that_is_a_link_is_refused(no_keychain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("hearth-someone-elses-token\n")
    elsewhere.chmod(0o600)
    (tmp_path / "data").mkdir()
    token_file(tmp_path / "data").symlink_to(elsewhere)
    with pytest.raises(ServeError, match="a link is refused"):
        server_token(tmp_path / "data")


def testhearth_serve_without_a_keychain_accepts_the_token_show_token_prints(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shown = hearth(data, "serve", "--show-token", env=NO_KEYCHAIN)
    assert shown.returncode == 0, shown.stderr
    token = shown.stdout.strip()
    assert len(token) > 40 and token_file(data).read_text().strip() == token
    s = Served(data, "--no-local", token=token, env=NO_KEYCHAIN)  # waits for /v1/models to answer 200
    try:
        assert f"kept in {token_file(data)}" in s.wait_for_output(f"kept in {token_file(data)}")
        assert httpx.get(f"{s.base}/v1/models", timeout=10).status_code == 401
        wrong = {"Authorization": "Bearer wrong"}
        assert httpx.get(f"{s.base}/v1/models", headers=wrong, timeout=10).status_code == 401
    finally:
        s.stop()
