"""A fake-server responder for surveys: valid checkbox picks and rankings, the fake's default for the rest.

The fake draws checkbox booleans and ranking places at random, so a ranking repeats an option and a
checkbox picks too many more often than not; the gateway would resample them (which the survey
tests check on purpose elsewhere). Tests and benches that count calls use this responder instead:
one pick per checkbox, and the options in a rotated order (from a hash of the prompt) per ranking.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tests.scripted import schema_of, user_text


def valid_picks(body: dict[str, Any]) -> dict[str, Any] | None:
    """The whole reply when the survey has a checkbox or a ranking; None (the fake's default) otherwise."""
    schema = schema_of(body)
    defs = schema.get("$defs", {})
    reply: dict[str, Any] = {}
    nested = False
    for name, ref in schema.get("properties", {}).items():
        if "$ref" not in ref:
            return None  # not a survey reply
        answer_schema = defs[ref["$ref"].split("/")[-1]]
        answer = answer_schema["properties"]["answer"]
        if "$ref" not in answer:
            reply[name] = None  # filled from the fake's default below
            continue
        nested = True
        places = defs[answer["$ref"].split("/")[-1]]["properties"]
        if all(p["type"] == "boolean" for p in places.values()):
            value: Any = {option: i == 0 for i, option in enumerate(places)}
        else:
            options = next(iter(places.values()))["enum"]
            shift = int(hashlib.sha256(user_text(body).encode()).hexdigest(), 16) % len(options)
            value = dict(zip(places, options[shift:] + options[:shift]))
        reply[name] = {"answer": value, **({"why": "Because."} if "why" in answer_schema["properties"] else {})}
    if not nested:
        return None
    from tests.fake_openai import _SchemaFaker

    digest = hashlib.sha256(user_text(body).encode()).digest()
    for name, value in reply.items():
        if value is None:  # a simple question: a schema-valid value, as the fake would give
            reply[name] = _SchemaFaker(schema, digest, user_text(body)).value(schema["properties"][name])
    return reply
