"""Content enrichment and styling, as ``tinytroupe.enrichment``: TinyEnricher and TinyStyler.

Both take a text and return a text: one call each, rendered from ``prompts/enricher*.j2`` and
``prompts/styler*.j2``, cached by content like every call. With ``use_past_results_in_context``
earlier results are shown to the model, so a series of documents stays consistent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from .asking import write

if TYPE_CHECKING:
    from .llm import LLMGateway


def _strip_fence(text: str) -> str:
    """The content inside a single ``` fence, if the model wrapped its answer in one."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```") and stripped.count("```") == 2:
        body = stripped[3:-3]
        first_line, _, rest = body.partition("\n")
        return (rest if first_line.strip().isidentifier() or not first_line.strip() else body).strip()
    return stripped


class _Rewriter:
    template = ""

    def __init__(self, use_past_results_in_context: bool = False, *, gateway: "LLMGateway | None" = None) -> None:
        self.use_past_results_in_context = use_past_results_in_context
        self.gateway = gateway
        self.context_cache: list[str] = []

    def _rewrite(self, context_cache: Sequence[str] | None, params: dict[str, Any] | None, **values: Any) -> str:
        past = list(context_cache) if context_cache is not None else (self.context_cache if self.use_past_results_in_context else [])
        reply = write(self.template, self.gateway, purpose=self.template, params=params, context_cache=past, **values)
        result = _strip_fence(reply.text)
        if self.use_past_results_in_context:
            self.context_cache.append(result)
        return result


class TinyEnricher(_Rewriter):
    """``TinyEnricher().enrich_content(requirements, content)``: the content, expanded to meet the requirements."""

    template = "enricher"

    def enrich_content(
        self,
        requirements: str,
        content: str,
        content_type: str | None = None,
        context_info: str = "",
        context_cache: Sequence[str] | None = None,
        verbose: bool = False,
    ) -> str:
        return self._rewrite(
            context_cache, None, requirements=requirements, content=content, content_type=content_type or "", context_info=context_info
        )


class TinyStyler(_Rewriter):
    """``TinyStyler().apply_style(content, style)``: the content, rewritten in the style."""

    template = "styler"

    def apply_style(
        self,
        content: str,
        style: str,
        content_type: str | None = None,
        context_info: str = "",
        context_cache: Sequence[str] | None = None,
        verbose: bool = False,
        temperature: float = 0.7,
    ) -> str:
        return self._rewrite(
            context_cache, {"temperature": temperature}, style=style, content=content, content_type=content_type or "", context_info=context_info
        )
