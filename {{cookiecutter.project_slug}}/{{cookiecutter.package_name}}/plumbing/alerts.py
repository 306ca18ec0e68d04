"""Tell someone how a run nobody watched ended: one post to a Slack-compatible incoming webhook.

Prefect's own ``slack_notifier`` does not fit: on a local run it first asks Prefect
Cloud about the run (for about a minute, then the flow fails with that error instead
of its own), and with its secret unset every run fails at its start. Here the post goes
from the process that ran the flow (``ClusterFlow.run``, whatever started it), after
its clusters are closed, straight to the webhook and nowhere else.

An alert reports a run; it never decides how the run ends. The whole post (connecting,
sending, waiting for the answer) is bounded by ``POST_SECONDS``: a webhook that is
down, slow, trickles its answer or refuses the post costs one warning line, and the
run's exit status stays what the run made it. The webhook's URL is a password (whoever
has it can post to the channel): it is kept out of every repr, log line and message.
"""

from __future__ import annotations

import json
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..settings import DISTRIBUTION
from .history import RunEntry

# The whole post, connection to last byte of the answer; each socket operation gets less.
POST_SECONDS = 8
SOCKET_SECONDS = 5
# Slack shows the first 40,000 characters of a message; an error this long is cut well before.
ERROR_MAX_CHARS = 2000


@dataclass(frozen=True)
class Alerts:
    """Where a run's alerts go and which runs send one; the URL never shows in a repr."""

    url: str = field(repr=False)
    always: bool = False  # NOTIFY_ON=always: every run, not only those that did not succeed

    def wanted(self, entry: RunEntry) -> bool:
        return self.always or not entry.succeeded


def escaped(text: str) -> str:
    """Text as Slack shows it literally: its markup characters escaped as Slack asks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message(entry: RunEntry) -> str:
    """The flow, its final state, the failing task and its error, where it ran, how long, on which host."""
    took = "" if entry.seconds is None else f", {entry.seconds:.1f} s"
    lines = [f"{DISTRIBUTION}: flow {entry.flow} ended {entry.state} (exit status {entry.exit_status})"]
    if entry.error:
        lines.append(entry.error[:ERROR_MAX_CHARS])
    cluster = f", cluster {entry.cluster}" if entry.cluster else ""
    lines.append(f"backend {entry.backend or 'none'}{cluster}{took}, on host {entry.host}")
    return escaped("\n".join(lines))


def notify(alerts: Alerts | None, entry: RunEntry) -> None:
    """Post the alert of ``entry`` if it is wanted; a post that fails is one warning line, nothing more."""
    if alerts is None or not alerts.wanted(entry):
        return
    problem = post(alerts.url, {"text": message(entry)})
    if problem is not None:
        print(f"warning: run alert not sent: {problem}", file=sys.stderr, flush=True)


def post(url: str, payload: dict[str, str]) -> str | None:
    """POST ``payload`` as JSON within ``POST_SECONDS``; None once the webhook accepted it, else why not
    (in words that never include the URL).

    In a daemon thread: a timeout on the socket bounds each read, not an answer that trickles
    in a byte at a time, and an unfinished post must not keep the process from exiting.
    """
    outcome: list[str | None] = []
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )

    def send() -> None:
        try:
            with urllib.request.urlopen(request, timeout=SOCKET_SECONDS) as answer:
                answer.read()
            outcome.append(None)
        except urllib.error.HTTPError as error:
            outcome.append(f"the webhook answered HTTP {error.code}")
        except TimeoutError:
            outcome.append(f"the webhook did not answer within {SOCKET_SECONDS} s")
        except Exception as error:  # the reason, never the URL, which some errors spell out
            outcome.append(f"the webhook cannot be reached ({reason(error, url)})")

    sender = threading.Thread(target=send, name="run alert", daemon=True)
    sender.start()
    sender.join(POST_SECONDS)
    if not outcome:
        return f"the webhook did not answer within {POST_SECONDS} s"
    return outcome[0]


def reason(error: Exception, url: str) -> str:
    """Why a post failed, by the error's class and OS message, with the URL and its host taken out."""
    cause = getattr(error, "reason", error)
    if isinstance(cause, TimeoutError):
        return f"no answer within {SOCKET_SECONDS} s"
    text = f"{type(cause).__name__}: {getattr(cause, 'strerror', None) or cause}"
    host = urlsplit(url).hostname or url
    return text.replace(url, "<webhook>").replace(host, "<webhook host>")
