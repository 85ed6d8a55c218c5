"""`hearth providers list | add NAME ... | set-key NAME | rm NAME`: remote providers from a terminal.

Exit codes: 0 done, 2 bad input (an unknown provider, a bad URL, a key or header value with a
line break in it, no keychain and no confirmation). The key is read from standard input (or a
prompt that does not echo), never from the command line, where it would land in the shell's
history and the process list. `--header` values and a user and password in `--url` go to the
keychain too (app.core.providers), and are never printed.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from app.cli.support import fail
from app.cli.terminal import for_stream
from app.core.errors import KeychainUnavailable, ProviderError
from app.core.providers import KeyStore, ProviderConfig, ProvidersFile, key_env_name

__all__ = ["add_providers_parser", "run_providers"]


def add_providers_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], data_dir: argparse.ArgumentParser
) -> None:
    """`data_dir`: a parent parser with only --data-dir (here --model names the remote model)."""
    common = data_dir
    p = sub.add_parser("providers", parents=[common], help="remote servers: OpenAI-compatible, Ollama, Dify")
    verbs = p.add_subparsers(dest="verb", metavar="{list,add,set-key,rm}")
    verbs.add_parser("list", parents=[common], help="configured providers and whether each has a key")
    add = verbs.add_parser("add", parents=[common], help="add or change a provider")
    add.add_argument("name")
    add.add_argument(
        "--kind",
        default="openai",
        help="wire format: openai (vLLM, llama-server, hosted APIs), ollama, dify-chat, dify-workflow (default openai)",
    )
    add.add_argument(
        "--url",
        required=True,
        help="base URL, e.g. http://192.168.1.20:8000/v1 (a user:password@ "
        "in it is kept in the system keychain, not in providers.toml)",
    )
    add.add_argument("--model", default="", help="the model name the server knows")
    add.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra header; its value is kept in the system keychain, not in providers.toml",
    )
    add.add_argument("--key-env", help="environment variable holding the API key")
    add.add_argument("--stop", action="append", default=[], help="a stop string (repeatable)")
    add.add_argument(
        "--redact",
        action="append",
        default=[],
        metavar="REGEX",
        help="hide text matching this pattern before it is shown or saved (repeatable)",
    )
    add.add_argument("--first-token-timeout", type=float, default=120.0, metavar="S")
    add.add_argument("--between-tokens-timeout", type=float, default=60.0, metavar="S")
    key = verbs.add_parser(
        "set-key", parents=[common], help="store a provider's API key in the OS keychain (read from standard input)"
    )
    key.add_argument("name")
    rm = verbs.add_parser("rm", parents=[common], help="remove a provider and its stored key")
    rm.add_argument("name")


def run_providers(args: argparse.Namespace, data_dir: Path, formats: set[str]) -> int:
    providers = ProvidersFile(data_dir, formats)
    keys = KeyStore()
    try:
        verb = getattr(args, "verb", None)
        if verb in (None, "list"):
            shown = for_stream(sys.stdout)  # providers.toml may come from elsewhere: no escapes reach a terminal
            for p in providers.load():
                has_key = "key: yes" if keys.key(p) else f"key: none (keychain or ${p.key_env or key_env_name(p.name)})"
                timeouts = (
                    f"timeouts: connect {p.connect_timeout_s:g} s, first text {p.first_token_timeout_s:g} s, "
                    f"between chunks {p.between_tokens_timeout_s:g} s"
                )
                print(shown(f"{p.name}\t{p.kind}\t{p.base_url}\t{p.model or '-'}\t{has_key}\t{timeouts}"))
            return 0
        if verb == "add":
            headers = {}
            for h in args.header:
                name, sep, value = h.partition("=")
                if not sep or not name.strip():
                    return _fail(f"--header wants NAME=VALUE, got {h!r}")
                headers[name.strip()] = value.strip()
            config = ProviderConfig(
                name=args.name,
                kind=args.kind,
                base_url=args.url,
                model=args.model,
                headers=headers,
                key_env=args.key_env,
                stop=tuple(args.stop),
                redact=tuple(args.redact),
                first_token_timeout_s=args.first_token_timeout,
                between_tokens_timeout_s=args.between_tokens_timeout,
            )
            providers.upsert(config)
            kept = [f"the value of {', '.join(sorted(config.headers))}"] * bool(config.headers)
            kept += ["the user and password in its URL"] * bool(config.url_auth)
            if kept:
                print(f"kept {' and '.join(kept)} in the system keychain", file=sys.stderr)
            print(
                f'saved provider {config.name}; use it with: hearth ask --provider {config.name!r} "…"', file=sys.stderr
            )
            return 0
        if verb == "set-key":
            config = providers.get(args.name)
            key = getpass.getpass(f"API key for {config.name}: ") if sys.stdin.isatty() else sys.stdin.readline()
            key = key.strip()
            if not key:
                return _fail("no key given (type it at the prompt, or pipe it in on standard input)")
            keys.set_key(config, key)
            print(f"stored the key for {config.name} in the system keychain", file=sys.stderr)
            return 0
        if verb == "rm":
            config = providers.get(args.name)
            providers.remove(config.name)
            keys.delete_key(config)
            print(f"removed provider {config.name} and its stored key", file=sys.stderr)
            return 0
    except (ProviderError, KeychainUnavailable) as e:
        return _fail(str(e))
    raise AssertionError(args.verb)


def _fail(message: str) -> int:
    return fail(message)  # escaped on a terminal: a bad providers.toml is quoted in it
