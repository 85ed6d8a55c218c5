"""The bearer token the API server requires (`hearth serve` and the window's server use the same
one), and where it is kept, looked up in this order:

1. the environment variable HEARTH_SERVE_TOKEN (a script, a container);
2. the OS keychain, where the first run creates it;
3. without a keychain (a server, a bare desktop session), the file `serve-token` in Hearth's
   data dir, the folder that holds its settings too (providers.toml, window.ini), as Jupyter
   keeps its token. A file that exists is used even once a keychain appears, so clients that
   were given its token keep working.

The file is written to a private temporary file (mode 0600 from its creation, whatever the
umask) and linked into place, so it is never readable by others and never seen half-written.
A file that other users can read or change, or that belongs to someone else, is refused (as ssh
refuses such a key) with the command that fixes it. On Windows the file lies in the person's
profile, which other users cannot open by default; there is no mode to check.

Must not: log the token, put it in the store, or write it anywhere but the keychain or that file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from app.core.errors import ServeError

__all__ = ["TOKEN_ENV", "TOKEN_FILE", "ServeToken", "server_token", "token_file"]

TOKEN_ENV = "HEARTH_SERVE_TOKEN"
TOKEN_FILE = "serve-token"
_SERVICE, _USER = "hearth", "serve-token"  # the keychain entry
_IN_KEYCHAIN = "in your keychain"


@dataclass(frozen=True)
class ServeToken:
    """The token, and where it is kept in a person's words ("in your keychain", "in /path/serve-token")."""

    value: str = field(repr=False)
    kept: str


def token_file(data_dir: Path) -> Path:
    return data_dir / TOKEN_FILE


def server_token(data_dir: Path) -> ServeToken:
    """The token, made on first use where it can be kept (see the module docstring).
    ServeError when the token file is unsafe or cannot be read or written; the message says how to fix it."""
    if os.environ.get(TOKEN_ENV, "").strip():
        return ServeToken(os.environ[TOKEN_ENV].strip(), f"in the environment variable {TOKEN_ENV}")
    import keyring
    from keyring.errors import KeyringError

    path = token_file(data_dir)
    try:
        token = keyring.get_password(_SERVICE, _USER)
        if token:
            return ServeToken(token, _IN_KEYCHAIN)
        if not path.exists():
            token = _new_token()
            keyring.set_password(_SERVICE, _USER, token)
            return ServeToken(token, _IN_KEYCHAIN)
    except KeyringError:
        pass  # no keychain here: the file keeps it
    return ServeToken(_read_or_create(path), f"in {path}")


def _new_token() -> str:
    return f"hearth-{secrets.token_urlsafe(32)}"


def _read_or_create(path: Path) -> str:
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    try:
        _create(path)
    except OSError as e:
        raise ServeError(
            "token_file",
            f"Cannot write the server's token to {path}: {e.strerror or e}. Set the environment "
            f"variable {TOKEN_ENV} to a long random string instead.",
        ) from None
    return _read(path)


def _read(path: Path) -> str:
    """The token in the file; FileNotFoundError when there is none yet."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))  # a link could point anywhere
    except FileNotFoundError:
        raise
    except OSError as e:
        raise ServeError(
            "token_file",
            f"Cannot read the server's token from {path}: {e.strerror or e}. Delete it (a link is "
            "refused too), and Hearth makes a new token.",
        ) from None
    with os.fdopen(fd, encoding="utf-8", errors="replace") as f:
        if os.name == "posix":  # checked on the open file: what is read is what was checked
            _check_private(path, os.fstat(f.fileno()))
        token = f.read(4096).strip()
    if not token or any(c.isspace() or not c.isprintable() for c in token):
        raise ServeError("token_file", f"{path} does not hold a token. Delete it, and Hearth makes a new one.")
    return token


def _check_private(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise ServeError("token_file", f"{path} is not a file. Remove it, and Hearth makes a new token.")
    if st.st_uid != os.getuid():
        raise ServeError(
            "token_file",
            f"{path} belongs to another user, so Hearth will not use the token in it. Delete it, and "
            "Hearth makes a new token.",
        )
    if st.st_mode & 0o077:
        raise ServeError(
            "token_file",
            f"{path} can be read or changed by other users (mode {stat.S_IMODE(st.st_mode):o}), so "
            f"Hearth will not use the token in it. Make it private: chmod 600 {path}",
        )


def _create(path: Path) -> None:
    """Write a new token to `path` unless another process got there first (then theirs stands)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{TOKEN_FILE}-", dir=path.parent)  # 0600, O_EXCL
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(_new_token() + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temporary, path)  # fails if it exists: never replaces a token clients already use
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links: create it in place, still 0600 and exclusive
            _create_in_place(path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def _create_in_place(path: Path) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(_new_token() + "\n")
