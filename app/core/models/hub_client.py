"""Talking to the Hugging Face Hub's API: search for GGUF repos, list one repo's files.

huggingface-hub does the Hub's part: its HTTP session, its auth headers, its typed errors
(`hf_raise_for_status`) and its `ModelInfo` parsing. The requests are sent here, not through
`HfApi.list_models`, because that method takes no timeout and huggingface-hub's session has
none: a Hub that accepts the connection and never answers would hang the caller. Every call
here is bounded: a connect and a per-read timeout, a deadline for the whole answer, and a size
cap on it. Errors come out as one `HubError` whose code a caller may branch on:

    network      the Hub could not be reached (offline, refused, DNS)
    slow         it did not answer within the deadline
    rate_limited 429 (the message says when to try again, from Retry-After)
    not_found    no such repo (or a private one without access)
    gated        the repo needs its terms accepted and a token (`hearth models login`)
    unauthorized the token was refused
    bad_answer   the answer was not the JSON expected, or too big
    server       any other error status

A token is passed per call and never appears in a message (huggingface-hub's errors may
quote request headers, so they are never shown as they are).

Must not: touch Qt, write files, or keep a token anywhere (app.core.models.hub_token does).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Literal

from app.core.errors import network_errors
from app.core.models.download import hub_endpoint
from app.core.models.hub_names import HubFileEntry, HubQuant, group_quants
from engine.errors import HearthError

__all__ = ["HubClient", "HubError", "HubErrorCode", "HubRepo", "HubRepoFiles", "SortKey"]

HubErrorCode = Literal[
    "network", "slow", "rate_limited", "not_found", "gated", "unauthorized", "bad_answer", "server", "too_big"
]
SortKey = Literal["downloads", "likes", "recent"]
_SORTS: dict[str, str] = {"downloads": "downloads", "likes": "likes", "recent": "lastModified"}
_MAX_JSON = 16 * 1024 * 1024  # a repo with thousands of files lists in a few MB
_CONNECT_S = 5.0
_READ_S = 10.0
_DEADLINE_S = 20.0


class HubError(HearthError):
    """The Hub could not answer as needed; `code` is a HubErrorCode."""

    def __init__(self, code: HubErrorCode, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(code, message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class HubRepo:
    """One search result: a repo with GGUF files, as the Hub's search describes it."""

    repo: str
    author: str
    downloads: int
    likes: int
    license: str | None
    last_modified: str | None  # ISO 8601, as the Hub gives it
    gated: bool


@dataclass(frozen=True, slots=True)
class HubRepoFiles:
    """One repo's GGUF models (one per quantization) and the commit they were listed at."""

    repo: HubRepo
    commit: str | None
    quants: tuple[HubQuant, ...]
    other_files: int  # files that are not GGUF models (README, configs, projectors)


class HubClient:
    """The Hub at `endpoint` (default: HF_ENDPOINT, else huggingface.co), as `token` sees it.

    Cheap to make: one per call site is fine. Thread-safe (huggingface-hub's session is).
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        token: str | None = None,
        deadline_s: float = _DEADLINE_S,
        read_timeout_s: float = _READ_S,
    ) -> None:
        self.endpoint = (endpoint or hub_endpoint()).rstrip("/")
        self._token = token
        self.deadline_s = deadline_s
        self.read_timeout_s = read_timeout_s

    def __repr__(self) -> str:  # never the token
        return f"HubClient({self.endpoint!r}, token={'set' if self._token else 'none'})"

    @property
    def token(self) -> str | None:
        return self._token

    # -- the API -----------------------------------------------------------------------
    def search(self, query: str, *, sort: SortKey = "downloads", limit: int = 20) -> list[HubRepo]:
        """Repos with GGUF files whose names match `query`'s words, best first by `sort`."""
        if sort not in _SORTS:
            raise ValueError(f"sort must be one of {', '.join(_SORTS)}")
        limit = max(1, min(100, limit))
        params = {"search": query.strip(), "filter": "gguf", "sort": _SORTS[sort], "direction": "-1"}
        params["limit"] = str(limit)
        data = self._get_json("/api/models", params, what=f"the search for {query.strip()!r}")
        if not isinstance(data, list):
            raise self._bad("the search", "a list was expected")
        return [_repo(item) for item in data[:limit] if isinstance(item, dict) and isinstance(item.get("id"), str)]

    def repo_files(self, repo: str, *, revision: str = "main") -> HubRepoFiles:
        """`repo`'s GGUF files grouped by quantization, with sizes and LFS sha256."""
        from huggingface_hub.hf_api import ModelInfo

        path = f"/api/models/{repo}" if revision == "main" else f"/api/models/{repo}/revision/{revision}"
        data = self._get_json(path, {"blobs": "true"}, what=repo, repo=repo)
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise self._bad(repo, "a repo's description was expected")
        try:
            info = ModelInfo(**data)  # type: ignore[no-untyped-call,unused-ignore]
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise self._bad(repo, f"its description could not be read ({type(e).__name__})") from None
        entries = []
        for s in info.siblings or []:
            lfs = getattr(s, "lfs", None)
            sha = getattr(lfs, "sha256", None) if lfs is not None else None
            size = s.size if s.size is not None else getattr(lfs, "size", None)
            entries.append(HubFileEntry(s.rfilename, int(size or 0), sha if isinstance(sha, str) else None))
        quants = tuple(group_quants(entries))
        listed = sum(len(q.files) for q in quants)
        return HubRepoFiles(_repo(data), info.sha, quants, len(entries) - listed)

    # -- HTTP --------------------------------------------------------------------------
    def headers(self) -> dict[str, str]:
        """huggingface-hub's headers (user agent, auth) for this client's token."""
        from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined,unused-ignore]

        return dict(build_hf_headers(token=self._token or None))

    def timeout(self) -> Any:
        from huggingface_hub import get_session

        return type(get_session().timeout)(self.read_timeout_s, connect=_CONNECT_S)

    def _get_json(self, path: str, params: dict[str, str], *, what: str, repo: str | None = None) -> Any:
        from huggingface_hub import get_session

        url = self.endpoint + path
        started = time.monotonic()
        body = bytearray()
        with (
            self.mapped(what, repo=repo),
            get_session().stream(
                "GET", url, params=params, headers=self.headers(), timeout=self.timeout(), follow_redirects=True
            ) as response,
        ):
            if response.status_code >= 400:
                response.read()
                self.raise_for_status(response, what, repo=repo)
            for chunk in response.iter_bytes(64 * 1024):
                body += chunk
                if len(body) > _MAX_JSON:
                    raise self._bad(what, f"the answer is over {_MAX_JSON // (1024 * 1024)} MB")
                if time.monotonic() - started > self.deadline_s:
                    raise self._slow(what)
        try:
            return json.loads(body)
        except ValueError:
            raise self._bad(what, "the answer is not JSON") from None

    def mapped(self, what: str, *, repo: str | None = None) -> Any:
        """A context that turns network failures and timeouts into HubErrors."""
        from contextlib import contextmanager

        @contextmanager
        def guard() -> Any:
            import httpx2

            try:
                yield
            except HearthError:
                raise
            except httpx2.TimeoutException:
                raise self._slow(what) from None
            except network_errors() as e:
                raise HubError(
                    "network",
                    f"Could not reach {self.endpoint} for {what} ({type(e).__name__}). Searching and downloading "
                    "models needs the network; the models already on this computer still work.",
                ) from None

        return guard()

    def raise_for_status(self, response: Any, what: str, *, repo: str | None = None) -> None:
        """Turn an error answer into a HubError a person can act on (huggingface-hub names its kind)."""
        from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError
        from huggingface_hub.utils import hf_raise_for_status  # type: ignore[attr-defined,unused-ignore]

        status = int(response.status_code)
        if status == 429:
            wait = _retry_after(response.headers.get("Retry-After"))
            when = f"in {wait:.0f} s" if wait is not None else "in a minute"
            raise HubError(
                "rate_limited",
                f"{self.endpoint} is limiting requests (429). Try again {when}"
                + ("" if self._token else "; logged-in users get higher limits (`hearth models login`)")
                + ".",
                retry_after_s=wait,
            )
        try:
            hf_raise_for_status(response)
        except GatedRepoError:
            raise self.gated(repo or what) from None
        except RepositoryNotFoundError:
            raise HubError(
                "not_found",
                f"There is no repo {repo or what} on {self.endpoint} (or it is private: "
                "`hearth models login` with a token that can read it).",
            ) from None
        except HfHubHTTPError:
            pass
        if status in (401, 403):
            raise HubError(
                "unauthorized",
                f"{self.endpoint} refused access to {what} ({status})"
                + (": the saved token was refused; `hearth models login` again." if self._token else ".")
                + ("" if self._token else " Log in with `hearth models login` if it is private."),
            )
        if status == 404:
            raise HubError("not_found", f"{what} was not found on {self.endpoint}.")
        raise HubError("server", f"{self.endpoint} answered {status} for {what}; try again later.")

    def gated(self, repo: str) -> HubError:
        if self._token:
            return HubError(
                "gated",
                f"{repo} is gated and your token has no access yet: accept its terms at "
                f"https://huggingface.co/{repo} with the account the token belongs to.",
            )
        return HubError(
            "gated",
            f"{repo} is gated: accept its terms at https://huggingface.co/{repo}, then `hearth models login`.",
        )

    def _slow(self, what: str) -> HubError:
        return HubError(
            "slow", f"{self.endpoint} did not answer in time for {what}; it may be busy or the network slow. Try again."
        )

    def _bad(self, what: str, why: str) -> HubError:
        return HubError("bad_answer", f"{self.endpoint} gave an answer Hearth cannot read for {what}: {why}.")


def _repo(item: dict[str, Any]) -> HubRepo:
    repo = str(item["id"])
    license_ = None
    card = item.get("cardData")
    if isinstance(card, dict) and isinstance(card.get("license"), str):
        license_ = card["license"]
    for tag in item.get("tags") or []:
        if license_ is None and isinstance(tag, str) and tag.startswith("license:"):
            license_ = tag.removeprefix("license:")
    modified = item.get("lastModified") or item.get("createdAt")
    return HubRepo(
        repo=repo,
        author=str(item.get("author") or repo.partition("/")[0]),
        downloads=_int(item.get("downloads")),
        likes=_int(item.get("likes")),
        license=license_,
        last_modified=modified if isinstance(modified, str) else None,
        gated=bool(item.get("gated")),
    )


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, min(3600.0, float(value))) if value else None
    except ValueError:
        return None
