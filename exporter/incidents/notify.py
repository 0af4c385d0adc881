"""An optional Slack follow-up with an incident's explanation.

Slack incoming webhooks take `POST <webhook URL>` with a JSON body `{"text": "..."}` and
answer 200 `ok` (api.slack.com/messaging/webhooks). The URL is a secret: it is read from a
file and masked in every log line. A failure is logged and never raised: the follow-up
is a courtesy; the page itself went through Alertmanager."""

from __future__ import annotations

import asyncio

import aiohttp
import structlog

from .llm import read_secret_file

log = structlog.get_logger()
TEXT_CHARS = 3000  # Slack shortens longer messages itself; ours stay readable


class SlackNotifier:
    def __init__(self, url_file: str, session: aiohttp.ClientSession, timeout: float = 10.0) -> None:
        self.url = read_secret_file(url_file, "--slack.webhook-url-file")
        self.session = session
        self.timeout = timeout

    async def send(self, text: str) -> bool:
        try:
            async with asyncio.timeout(self.timeout), self.session.post(self.url, json={"text": text[:TEXT_CHARS]}, allow_redirects=False) as resp:
                await resp.read()
                if resp.status != 200:
                    log.warning("incident_slack_failed", status=resp.status)
                    return False
        except TimeoutError:
            log.warning("incident_slack_failed", error="timeout", timeout=self.timeout)
            return False
        except aiohttp.ClientError as e:
            log.warning("incident_slack_failed", error=type(e).__name__)
            return False
        return True
