"""Reach Coiled or say in one line why not, before anyone waits for it.

Without a token, ``coiled.Cluster`` starts a browser login and polls Coiled for about
ten minutes: right at a terminal, a silent hang in CI or any run without one. And when
Coiled cannot be reached or refuses the token, its client raises from deep inside
aiohttp; the user needs one line saying what to check, the traceback only when debugging.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any

from prefect.utilities.logging import get_logger

from .overrides import SettingError

TOKEN_VARIABLE = "DASK_COILED__TOKEN"
LOGIN = f"run `coiled login` once on this machine, or set {TOKEN_VARIABLE} (in CI, from a secret)"

# Prefect's logger: PREFECT__LOGGING__LEVEL=DEBUG shows the full error behind the one line.
logger = get_logger("coiled")


class CoiledLoginNeeded(SettingError):
    """No Coiled token and no terminal to log in from."""


class CoiledUnavailable(RuntimeError):
    """Coiled could not be reached, or refused the request; the message says what to check."""


def has_token() -> bool:
    """Whether Coiled's own configuration holds a token (``coiled login`` or DASK_COILED__TOKEN)."""
    import dask

    return bool(dask.config.get("coiled.token", None))


def interactive(environ: Mapping[str, str] | None = None, stdin: IO[Any] | None = None) -> bool:
    """A person at a terminal who can finish a browser login: stdin is a terminal and CI is not set."""
    environ = os.environ if environ is None else environ
    stdin = sys.stdin if stdin is None else stdin
    return not environ.get("CI") and stdin is not None and stdin.isatty()


_login_announced = False


def require_credentials(environ: Mapping[str, str] | None = None, stdin: IO[Any] | None = None) -> None:
    """Refuse before any cluster is created when Coiled would wait for a login nobody can give."""
    global _login_announced
    if has_token():
        return
    if not interactive(environ, stdin):
        raise CoiledLoginNeeded(f"no Coiled token, and no terminal to log in from: {LOGIN}; nothing was started")
    if not _login_announced:
        _login_announced = True
        print(f"note: no Coiled token yet; Coiled's browser login follows (or stop and {LOGIN})", file=sys.stderr)


def start_cluster(cluster_class: Any, kwargs: Mapping[str, Any]) -> Any:
    """``coiled.Cluster(**kwargs)``; a failure to reach or be accepted by Coiled becomes CoiledUnavailable."""
    with reaching_coiled(kwargs.get("workspace")):
        return cluster_class(**kwargs)


@contextmanager
def reaching_coiled(workspace: str | None) -> Iterator[None]:
    """Calls to Coiled inside the block: failing to reach Coiled, or to be accepted, raises CoiledUnavailable.

    Coiled answers a rejected token with its browser login, as if there were none, so
    without a terminal the token is checked first, by Coiled's own client with that
    retry turned off.
    """
    import dask
    from coiled.exceptions import AuthenticationError, PermissionsError

    server = dask.config.get("coiled.server", "Coiled's server")
    try:
        if not interactive():
            _check_token(server, workspace)
        yield
    except (AuthenticationError, PermissionsError) as error:
        logger.debug("Coiled refused the request", exc_info=True)
        raise CoiledUnavailable(
            f"Coiled at {server} refused the token ({error}); run `coiled login` again, or check {TOKEN_VARIABLE}"
        ) from None
    except OSError as error:  # aiohttp's connection errors are OSErrors
        logger.debug("Coiled cannot be reached", exc_info=True)
        raise CoiledUnavailable(
            f"Coiled at {server} cannot be reached ({type(error).__name__}: {error}); check the network, "
            "a proxy or firewall, and DASK_COILED__SERVER if you set it"
        ) from None


def _check_token(server: str, workspace: str | None) -> None:
    """Ask Coiled whether it accepts the token; AuthenticationError if not, never a login."""
    import asyncio

    import dask
    from coiled.utils import handle_credentials

    token = dask.config.get("coiled.token", None)
    asyncio.run(
        handle_credentials(
            server=server, token=token, workspace=workspace, save=False, retry=False, print_invalid_token_messages=False
        )
    )
