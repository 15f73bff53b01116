"""Is a written persona consistent with the attributes sampled for it?

The LLM is told each attribute and the field to write it in; this module checks it did. A number
drawn in a band (age 37) must be the persona's number; a category (``female``, ``South``) must
appear word for word in its field (or, for an attribute no persona field is named after, anywhere
in the persona). A conflict is reported per dimension, so the profile can count what each
dimension achieved.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Dimension names (lower case) and the persona field that holds them.
_FIELDS = {
    "age": "age",
    "gender": "gender", "sex": "gender",
    "nationality": "nationality", "citizenship": "nationality",
    "residence": "residence", "region": "residence", "location": "residence", "country": "residence",
    "state": "residence", "city": "residence", "urbanicity": "residence", "area": "residence",
    "education": "education", "educational_attainment": "education", "education_level": "education",
    "occupation": "occupation", "job": "occupation", "profession": "occupation",
}  # fmt: skip


def field_for(dimension: str, value: int | str | None = None) -> str | None:
    """The persona field a dimension's value is written in (None: anywhere, e.g. other_facts).

    An age group in words ("retired") cannot go in the numeric ``age`` field, so it goes anywhere.
    """
    field = _FIELDS.get(dimension.strip().lower().replace(" ", "_").replace("-", "_"))
    return None if field == "age" and value is not None and not isinstance(value, int) else field


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _mentions(text: str, phrase: str) -> bool:
    words = [re.escape(w) for w in re.findall(r"\w+", phrase)]
    if not words:
        return True
    return re.search(r"(?<!\w)" + r"\W+".join(words) + r"(?!\w)", text, re.IGNORECASE) is not None


def conflicts(persona: dict[str, Any], values: dict[str, int | str]) -> dict[str, str]:
    """Each dimension whose sampled value the persona does not hold, with what is wrong."""
    problems: dict[str, str] = {}
    everything = _text({k: v for k, v in persona.items() if k != "name"})
    for dim, value in values.items():
        field = field_for(dim, value)
        if isinstance(value, int) and field == "age":
            if persona.get("age") != value:
                problems[dim] = f"{dim}: the person is {value} years old; the draft says {persona.get('age')!r}"
            continue
        where = _text(persona.get(field, "")) if field else everything
        if not _mentions(where, str(value)):
            place = f"in {field}" if field else "anywhere"
            problems[dim] = f"{dim}: the person's {dim} is {value!r}, which the draft does not state {place}"
    return problems
