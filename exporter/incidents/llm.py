"""An optional LLM summary of an incident, through any OpenAI-compatible server.

`POST {base_url}/chat/completions` with `{"model", "messages": [{"role", "content"}],
"max_tokens", "temperature"}`; the answer's text is `choices[0].message.content`
(OpenAI's Chat Completions API reference, platform.openai.com/docs/api-reference/chat;
the same shape the official clients send, and that vLLM, llama.cpp's server and Ollama
accept). `base_url` is what the official clients call it: it includes `/v1`.

The LLM only ever adds a summary beside the rule text: every failure (no key file, a
timeout, an HTTP error, an answer without text, one too large) raises `LlmError`, and
the caller keeps the rules' explanation. The prompt is built from the incident, its
alerts and the rule explanation, cut to the token budget, and every secret the process
knows is masked in it (redact.py) before it leaves."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from .. import limits, safejson
from ..redact import Redactor
from .explain import Explanation
from .records import Incident, StoredAlert

CHARS_PER_TOKEN = 4  # a rough, conservative size of a token in English text
SUMMARY_CHARS = 4000
SYSTEM = (
    "You are an on-call assistant for a service that monitors third-party crypto APIs. "
    "Summarize the incident below for the engineer who was paged, in at most five sentences: "
    "what is broken, the most likely cause, and what to do first. Use only the facts given; "
    "say so when they do not settle the cause."
)
ANNOTATIONS_SHOWN = ("summary", "description")


class LlmError(Exception):
    pass


@dataclass(frozen=True)
class LlmSettings:
    base_url: str  # e.g. https://api.openai.com/v1, http://127.0.0.1:11434/v1
    model: str = "gpt-4o-mini"
    key_file: str | None = None  # the API key, read at start; none for a local server without auth
    timeout: float = 20.0  # seconds for the whole call
    max_tokens: int = 300  # the answer's budget
    prompt_tokens: int = 3000  # the prompt's budget (facts are cut to fit)


def read_secret_file(path: str, what: str) -> str:
    try:
        value = Path(path).read_text().strip()
    except OSError as e:
        raise ValueError(f"{what}: cannot read {path}: {e.strerror or e}") from None
    if not value:
        raise ValueError(f"{what}: {path} is empty")
    return value


def build_prompt(incident: Incident, alerts: Sequence[StoredAlert], explanation: Explanation, budget_chars: int) -> str:
    lines = [
        f"Incident #{incident.id}: {incident.title}",
        f"Status: {incident.status.value}; severity: {incident.severity.value}; alerts firing: {incident.alerts_firing} of {incident.alerts_total}",
        f"Providers: {', '.join(incident.providers) or 'none named'}",
        f"Endpoints: {', '.join(incident.endpoints) or 'none named'}",
    ]
    if incident.chains:
        lines.append(f"Chains: {', '.join(incident.chains)}")
    lines.append(f"Rule-based cause: {explanation.title}")
    lines.append(f"Rule-based remediation: {explanation.remediation}")
    lines.append(f"Facts (from {explanation.facts_source}):")
    lines.extend(f"- {f}" for f in explanation.facts)
    lines.append("Alerts:")
    seen: set[tuple[str, str]] = set()
    for a in alerts:
        name = a.labels.get("alertname", "alert")
        text = " ".join(a.annotations.get(k, "") for k in ANNOTATIONS_SHOWN).strip()
        if (name, text) in seen:  # a storm of one alert over many providers says its text once
            continue
        seen.add((name, text))
        where = "/".join(a.labels[k] for k in ("provider", "endpoint") if a.labels.get(k))
        lines.append(f"- {name} {where} [{a.status}]: {text}")
    prompt = "\n".join(lines)
    if len(prompt) > budget_chars:
        prompt = prompt[: max(0, budget_chars - 20)] + "\n[... cut to budget]"
    return prompt


class LlmClient:
    def __init__(self, settings: LlmSettings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.session = session
        self.key = read_secret_file(settings.key_file, "--llm.key-file") if settings.key_file else None
        self.url = settings.base_url.rstrip("/") + "/chat/completions"

    def request_body(self, prompt: str) -> dict[str, Any]:
        return {
            "model": self.settings.model,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
            "max_tokens": self.settings.max_tokens,
            "temperature": 0,
        }

    def prompt_for(self, incident: Incident, alerts: Sequence[StoredAlert], explanation: Explanation, redactor: Redactor) -> str:
        budget = min(self.settings.prompt_tokens * CHARS_PER_TOKEN, limits.INCIDENT_PROMPT_CHARS)
        return redactor.redact(build_prompt(incident, alerts, explanation, budget))

    async def complete(self, prompt: str) -> str:
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        try:
            async with asyncio.timeout(self.settings.timeout):
                async with self.session.post(self.url, json=self.request_body(prompt), headers=headers, allow_redirects=False) as resp:
                    raw = await resp.content.read(limits.INCIDENT_LLM_ANSWER_BYTES + 1)
                    if resp.status != 200:
                        raise LlmError(f"HTTP {resp.status}")
        except TimeoutError:
            raise LlmError(f"no answer within {self.settings.timeout:g} s") from None
        except aiohttp.ClientError as e:
            raise LlmError(type(e).__name__) from None
        if len(raw) > limits.INCIDENT_LLM_ANSWER_BYTES:
            raise LlmError(f"answer larger than {limits.INCIDENT_LLM_ANSWER_BYTES} bytes")
        try:
            body = safejson.loads(raw, max_depth=32)
            text = body["choices"][0]["message"]["content"]
        except (safejson.JsonError, KeyError, IndexError, TypeError):
            raise LlmError("the answer is not a chat completion (choices[0].message.content)") from None
        if not isinstance(text, str) or not text.strip():
            raise LlmError("the answer has no text")
        return text.strip()[:SUMMARY_CHARS]
