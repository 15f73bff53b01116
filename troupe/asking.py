"""One structured question to the LLM from a prompt template: the helper the utilities share.

Enrichment, styling, stories, propositions, validation and reports each ask the model one typed
question rendered from ``prompts/<template>.j2`` (with ``prompts/<template>_system.j2`` as the
system message when it exists). They all go through the gateway, so they are cached by content,
limited, retried and counted like an agent's turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from . import prompts
from .resources import data_path

if TYPE_CHECKING:
    from .llm import ChatResult, LLMGateway

M = TypeVar("M", bound=BaseModel)


def messages(template: str, **values: Any) -> list[dict[str, str]]:
    """The chat messages for a template: its system part (if any) and its user part."""
    result = []
    if (data_path("prompts") / f"{template}_system.j2").is_file():
        result.append({"role": "system", "content": prompts.render(f"{template}_system", **values)})
    result.append({"role": "user", "content": prompts.render(template, **values)})
    return result


def resolve_gateway(gateway: "LLMGateway | None", *owners: Any) -> "LLMGateway":
    """The gateway given, else the first owner's (an agent or world), else the process default."""
    if gateway is not None:
        return gateway
    for owner in owners:
        found = getattr(owner, "gateway", None)
        if found is not None:
            return found
    from .llm import default_gateway

    return default_gateway()


def ask(template: str, schema: type[M], gateway: "LLMGateway | None" = None, *, purpose: str = "", owners: tuple[Any, ...] = (), params: dict[str, Any] | None = None, **values: Any) -> "ChatResult[M]":
    """Render the template with values and ask for a reply of type schema."""
    return resolve_gateway(gateway, *owners).structured(
        messages(template, **values), schema, purpose=purpose or template, **(params or {})
    )


async def aask(template: str, schema: type[M], gateway: "LLMGateway | None" = None, *, purpose: str = "", owners: tuple[Any, ...] = (), params: dict[str, Any] | None = None, **values: Any) -> "ChatResult[M]":
    return await resolve_gateway(gateway, *owners).astructured(
        messages(template, **values), schema, purpose=purpose or template, **(params or {})
    )


def write(template: str, gateway: "LLMGateway | None" = None, *, purpose: str = "", owners: tuple[Any, ...] = (), params: dict[str, Any] | None = None, **values: Any) -> "ChatResult[str]":
    """Render the template with values and ask for free text (documents, stories, reports)."""
    return resolve_gateway(gateway, *owners).complete(messages(template, **values), purpose=purpose or template, **(params or {}))
