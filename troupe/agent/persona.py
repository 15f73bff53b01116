"""Personas in TinyTroupe's JSON format: load, validate, merge fragments, define fields, save.

TinyTroupe describes a simulated person with a free-form JSON "persona" in files such as
``{"type": "TinyPerson", "persona": {...}}`` (a whole agent) and
``{"type": "Fragment", "persona": {...}}`` (a partial persona deep-merged into an agent).
troupe reads those files as they are, so the models here:

* type the fields TinyTroupe's prompts rely on (so a wrong type fails early, with a message naming
  the file, the field and the fix, instead of producing a strange prompt later);
* keep every unknown field (``extra="allow"`` everywhere), because real files carry keys such as
  ``behaviors.debate`` that the prompt still uses;
* round-trip exactly: loading a file and saving it gives the same JSON value, because dumps only
  contain what was set (no invented defaults).

Everything is pure: ``merged``/``defined`` return new personas and never change the old one, which
keeps cached pipeline steps honest (a persona's JSON is its identity).
"""

from __future__ import annotations

import copy
import json
import os
import re
import tempfile
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from ..errors import SpecError

SpecKind = Literal["TinyPerson", "Fragment"]
_SPEC_KINDS: tuple[str, ...] = ("TinyPerson", "Fragment")


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


class _Open(BaseModel):
    """Base of every persona model: unknown fields are kept, as TinyTroupe files have many."""

    model_config = ConfigDict(extra="allow")


class Occupation(_Open):
    """What the person does for a living (TinyTroupe also allows a plain string instead)."""

    title: str | None = None
    organization: str | None = None
    description: str | None = None


class Personality(_Open):
    """Traits (second-person sentences) and Big Five levels, as TinyTroupe writes them."""

    traits: list[str] = Field(default_factory=list)
    big_five: dict[str, str] = Field(default_factory=dict)


class Preferences(_Open):
    """Interests, likes and dislikes: lists of short sentences."""

    interests: list[str] = Field(default_factory=list)
    likes: list[str] = Field(default_factory=list)
    dislikes: list[str] = Field(default_factory=list)


class Behaviors(_Open):
    """General habits plus routines; fragments add other lists (``debate``).

    Routines come in TinyTroupe's two forms: per part of the day (``{"morning": [...]}``, its
    agent files) or one list (``["Every morning, you ..."]``, its README and example builders).
    """

    general: list[str] = Field(default_factory=list)
    routines: dict[str, list[str]] | list[str] = Field(default_factory=dict)


class Relationship(_Open):
    """Someone the person knows: a name and what they are to the person."""

    name: str
    description: str | None = None


class Persona(_Open):
    """A whole TinyTroupe persona. Only ``name`` is required; every other field is optional."""

    name: str
    age: int | str | None = None
    gender: str | None = None
    nationality: str | None = None
    residence: str | None = None
    education: str | None = None
    long_term_goals: list[str] = Field(default_factory=list)
    occupation: Occupation | str | None = None
    style: str | None = None
    personality: Personality = Field(default_factory=Personality)
    preferences: Preferences = Field(default_factory=Preferences)
    skills: list[str] = Field(default_factory=list)
    beliefs: list[str] = Field(default_factory=list)
    behaviors: Behaviors = Field(default_factory=Behaviors)
    health: str | None = None
    relationships: list[Relationship] = Field(default_factory=list)
    other_facts: list[str] = Field(default_factory=list)

    # Top-level keys of the spec file besides "type" and "persona" (TinyTroupe's older agent files
    # carry e.g. "name" or "mental_faculties" there). Kept so saving gives the file back.
    _spec_extras: dict[str, Any] = PrivateAttr(default_factory=dict)

    # ---- construction -----------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any, source: str = "persona") -> Persona:
        """Validate a persona dict; errors become :class:`SpecError` naming ``source`` and the field."""
        return _validate(cls, data, source, "persona")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Persona:
        """Load a whole agent (``"type": "TinyPerson"``) file; a fragment file is refused."""
        kind, persona, extras = _read_spec(path)
        if kind != "TinyPerson":
            raise SpecError(
                f"{_label(path)}: type: expected \"TinyPerson\" (a whole agent), got {kind!r}; "
                "load fragments with load_spec_file() and apply them with Persona.merged()"
            )
        result = _validate(cls, persona, _label(path), "persona")
        result._spec_extras = extras
        return result

    # ---- serialisation ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The persona as plain JSON data, holding exactly the fields that were set."""
        return self.model_dump(mode="json", exclude_unset=True)

    def to_spec(self) -> dict[str, Any]:
        """The TinyTroupe agent document ``{"type": "TinyPerson", "persona": ...}`` (plus kept extras)."""
        spec: dict[str, Any] = {"type": "TinyPerson", "persona": self.to_dict()}
        for key, value in self._spec_extras.items():
            spec.setdefault(key, copy.deepcopy(value))
        return spec

    # ---- derivation (all return new personas) ------------------------------------------------

    def _derive(self, data: dict[str, Any], source: str) -> Persona:
        """Validate ``data`` as a new persona that keeps this one's spec-file extras."""
        result = _validate(type(self), data, source, "persona")
        result._spec_extras = copy.deepcopy(self._spec_extras)
        return result

    def merged(self, fragment: dict[str, Any] | Persona, source: str = "fragment") -> Persona:
        """A new persona with ``fragment`` deep-merged in (lists extended, objects merged, scalars replaced).

        ``fragment`` is a fragment's persona dict (as returned by :func:`load_spec_file`); a whole
        ``{"type": "Fragment", "persona": {...}}`` document is accepted too.
        """
        if isinstance(fragment, BaseModel):
            fragment = fragment.model_dump(mode="json", exclude_unset=True)
        if not isinstance(fragment, dict):
            raise SpecError(
                f"{source}: persona: expected an object, got {_describe_value(fragment)}; "
                "pass the fragment's persona dict"
            )
        if fragment.get("type") == "Fragment" and isinstance(fragment.get("persona"), dict):
            fragment = fragment["persona"]
        return self._derive(deep_merge(self.to_dict(), fragment), source)

    def defined(self, key: str | None, value: Any, group: str | None = None) -> Persona:
        """A new persona with one field set (``group=None``) or one item appended to a list group.

        Without ``group``, ``key`` names a top-level field, or a nested one with dots
        (``"occupation.title"``). With ``group``, ``value`` is appended to that list; TinyTroupe's
        legacy group names (``"personality_traits"``, ``"routines"``, ...) are mapped to the
        current schema and legacy one-key records (``{"trait": "..."}``) are unwrapped, so old
        TinyTroupe scripts keep working. An item already in the list is not added again.
        """
        data = self.to_dict()
        source = f"persona {self.name!r}"
        if group is None:
            if not key:
                raise SpecError(f"{source}: key: expected a field name, got {key!r}; pass e.g. 'age'")
            _set_dotted(data, key, _plain(value), source)
        else:
            item = value if key is None else {key: value}
            _append_to_group(data, group, [item], source)
        return self._derive(data, source)

    def defined_several(self, group: str, values: typing.Iterable[Any]) -> Persona:
        """A new persona with every item of ``values`` appended to ``group`` (see :meth:`defined`)."""
        data = self.to_dict()
        source = f"persona {self.name!r}"
        _append_to_group(data, group, list(values), source)
        return self._derive(data, source)

    # ---- summaries --------------------------------------------------------------------------

    def minibio_facts(self) -> str:
        """A one-paragraph plain summary (no LLM), for listings and for introducing agents."""
        title = organization = None
        if isinstance(self.occupation, Occupation):
            title, organization = self.occupation.title, self.occupation.organization
        elif isinstance(self.occupation, str):
            title = self.occupation

        # "Lisa Carter is a 28-year-old Canadian Data Scientist at Microsoft." -- or, when the
        # age is text ("late 30s"), "Lisa Carter, aged late 30s, is a Canadian Data Scientist."
        subject = self.name
        descriptors: list[str] = []
        if isinstance(self.age, int):
            descriptors.append(f"{self.age}-year-old")
        elif isinstance(self.age, str) and self.age.strip():
            subject += f", aged {self.age.strip()},"
        if self.nationality:
            descriptors.append(self.nationality)
        descriptors.append(title or "person")
        sentence = f"{subject} is {_article(descriptors[0])} {' '.join(descriptors)}"
        if organization:
            sentence += f" at {organization}"
        sentence = sentence.rstrip(",. ") + "."

        traits = [t.strip().rstrip(".") for t in self.personality.traits[:2] if t.strip()]
        if traits:
            sentence += " Personality: " + "; ".join(traits) + "."
        return sentence


class PersonaFragment(Persona):
    """A partial persona (a fragment's ``persona``): like :class:`Persona` but ``name`` is optional."""

    name: str | None = None  # type: ignore[assignment]


# --------------------------------------------------------------------------------------------
# Merging
# --------------------------------------------------------------------------------------------


def deep_merge(base: dict[str, Any], fragment: dict[str, Any]) -> dict[str, Any]:
    """Merge ``fragment`` into a copy of ``base`` the way TinyTroupe applies fragments.

    Lists are extended with the items not already present (so applying a fragment twice changes
    nothing), objects are merged recursively, anything else (scalars, or values of different kinds)
    is replaced. Neither argument is modified.
    """
    result = copy.deepcopy(base)
    for key, new in fragment.items():
        old = result.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            result[key] = deep_merge(old, new)
        elif isinstance(old, list) and isinstance(new, list):
            for item in new:
                if item not in old:
                    old.append(copy.deepcopy(item))
        else:
            result[key] = copy.deepcopy(new)
    return result


# --------------------------------------------------------------------------------------------
# Legacy TinyTroupe groups
# --------------------------------------------------------------------------------------------

# TinyTroupe's older programmatic API appended to flat groups; these are their places now.
LEGACY_GROUPS: dict[str, tuple[str, ...]] = {
    "personality_traits": ("personality", "traits"),
    "professional_interests": ("preferences", "interests"),
    "personal_interests": ("preferences", "interests"),
    "interests": ("preferences", "interests"),
    "likes": ("preferences", "likes"),
    "dislikes": ("preferences", "dislikes"),
    "skills": ("skills",),
    "beliefs": ("beliefs",),
    "relationships": ("relationships",),
    "routines": ("behaviors", "routines", "general"),
    "behaviors": ("behaviors", "general"),
    "other_facts": ("other_facts",),
}


def _group_path(group: str, data: dict[str, Any]) -> tuple[str, ...]:
    """Where a (possibly legacy) group's list lives in ``data``; unknown groups are top-level lists.

    Routines kept as one list (TinyTroupe's README form) take new routines in that list.
    """
    path = LEGACY_GROUPS.get(group, (group,))
    behaviors = data.get("behaviors")
    if group == "routines" and isinstance(behaviors, dict) and isinstance(behaviors.get("routines"), list):
        return path[:-1]
    return path


def _normalise_item(group: str, item: Any) -> Any:
    """Turn a legacy record into the current schema's item for ``group``.

    ``{"trait": "You are curious"}`` becomes ``"You are curious"``. Relationships stay objects
    (``{"name": ..., "description": ...}``); TinyTroupe's capitalised ``Name``/``Description`` keys
    are lower-cased, and a one-key wrapper around a relationship object is removed.
    """
    item = _plain(item)
    if group == "relationships":
        if isinstance(item, dict) and len(item) == 1:
            (inner,) = item.values()
            if isinstance(inner, dict):
                item = inner
        if isinstance(item, dict):
            item = {
                (k.lower() if k in ("Name", "Description") and k.lower() not in item else k): v
                for k, v in item.items()
            }
        return item
    if isinstance(item, dict) and len(item) == 1:
        (inner,) = item.values()
        if isinstance(inner, str):
            return inner
    return item


def _append_to_group(data: dict[str, Any], group: str, items: list[Any], source: str) -> None:
    """Append ``items`` (normalised, without duplicates) to ``group``'s list inside ``data``."""
    if not group:
        raise SpecError(f"{source}: group: expected a group name, got {group!r}; pass e.g. 'skills'")
    path = _group_path(group, data)
    node: dict[str, Any] = data
    for depth, part in enumerate(path[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join(path[: depth + 1])
            raise SpecError(
                f"{source}: {where}: expected an object to add {group!r} items to, got "
                f"{_describe_value(child)}; make {where} an object first"
            )
        node = child
    target = node.setdefault(path[-1], [])
    if not isinstance(target, list):
        where = ".".join(path)
        raise SpecError(
            f"{source}: {where}: expected a list to append {group!r} items to, got "
            f"{_describe_value(target)}; define it as a list first"
        )
    for item in items:
        normalised = _normalise_item(group, item)
        if normalised not in target:
            target.append(normalised)


def _set_dotted(data: dict[str, Any], key: str, value: Any, source: str) -> None:
    """Set ``data[a][b]...`` for the dotted ``key`` ``"a.b..."``, creating objects on the way.

    An occupation given as a plain string becomes ``{"title": <string>}`` when a sub-field is set,
    so ``defined("occupation.organization", ...)`` keeps the title.
    """
    parts = key.split(".")
    if any(not part for part in parts):
        raise SpecError(f"{source}: {key}: empty part in the dotted field name; write e.g. 'occupation.title'")
    node: dict[str, Any] = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif isinstance(child, str) and depth == 0 and part == "occupation":
            child = node[part] = {"title": child}
        elif not isinstance(child, dict):
            where = ".".join(parts[: depth + 1])
            raise SpecError(
                f"{source}: {where}: cannot set {key!r} inside {_describe_value(child)}; "
                f"set {where} to an object first"
            )
        node = child
    node[parts[-1]] = value


def _plain(value: Any) -> Any:
    """JSON-like data from models, tuples and nested containers (what a persona dict may hold)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _label(path: str | os.PathLike[str]) -> str:
    """How a file is named in messages: as the user gave it."""
    return os.fspath(path)


def _read_json(path: str | os.PathLike[str]) -> Any:
    """Parse a JSON file; every failure becomes a one-line SpecError naming the file."""
    label = _label(path)
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise SpecError(
            f"{label}: file not found (looked at {p.resolve()}); check the path"
        ) from None
    except IsADirectoryError:
        raise SpecError(f"{label}: is a directory, not a file; pass a .json file") from None
    except OSError as exc:
        raise SpecError(f"{label}: cannot read the file ({exc.strerror}); check its permissions") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"{label}: byte {exc.start}: not valid UTF-8; save the file as UTF-8"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(
            f"{label}: line {exc.lineno}, column {exc.colno}: invalid JSON ({exc.msg}); fix the syntax there"
        ) from None


def _read_spec(path: str | os.PathLike[str]) -> tuple[SpecKind, dict[str, Any], dict[str, Any]]:
    """Read a spec file into (kind, persona dict, other top-level keys)."""
    label = _label(path)
    document = _read_json(path)
    if not isinstance(document, dict):
        raise SpecError(
            f"{label}: top level: expected a JSON object, got {_describe_value(document)}; "
            'write {"type": "TinyPerson", "persona": {...}}'
        )
    if "type" not in document:
        raise SpecError(
            f'{label}: type: missing; add "type": "TinyPerson" (a whole agent) or "type": "Fragment"'
        )
    kind = document["type"]
    if kind not in _SPEC_KINDS:
        raise SpecError(
            f'{label}: type: expected "TinyPerson" or "Fragment", got {json.dumps(kind, ensure_ascii=False)}; '
            "use one of those"
        )
    if "persona" not in document:
        raise SpecError(f'{label}: persona: missing; add a "persona" object with the person\'s fields')
    persona = document["persona"]
    if not isinstance(persona, dict):
        raise SpecError(
            f"{label}: persona: expected an object, got {_describe_value(persona)}; "
            "make persona a JSON object of fields"
        )
    extras = {k: v for k, v in document.items() if k not in ("type", "persona")}
    return kind, persona, extras


def load_spec_file(path: str | os.PathLike[str]) -> tuple[SpecKind, dict[str, Any]]:
    """Read and validate a TinyTroupe agent or fragment file; return its kind and persona dict.

    The dict is the file's persona exactly as written (unknown fields included), after checking
    every known field's type. Agents need a ``name``; fragments need not.
    """
    kind, persona, _extras = _read_spec(path)
    model: type[Persona] = Persona if kind == "TinyPerson" else PersonaFragment
    _validate(model, persona, _label(path), "persona")
    return kind, persona


def save_spec(persona: Persona, path: str | os.PathLike[str]) -> Path:
    """Write ``persona`` as a TinyTroupe agent file, atomically (never a half-written file).

    The JSON goes to a temporary file in the same directory, which then replaces ``path`` in one
    step, so readers see either the old file or the new one.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(persona.to_spec(), indent=4, ensure_ascii=False) + "\n"
    try:
        mode = target.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return target


# --------------------------------------------------------------------------------------------
# Validation messages
# --------------------------------------------------------------------------------------------


def _validate(model: type[Persona], data: Any, source: str, prefix: str) -> Persona:
    """``model.model_validate(data)``, turning pydantic's report into one readable SpecError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_validation_message(model, exc, source, prefix)) from None


def _validation_message(model: type[BaseModel], exc: ValidationError, source: str, prefix: str) -> str:
    """One line for the most specific error: ``source: field.path: expected X, got Y; fix``."""
    errors = exc.errors(include_url=False)
    # The longest location is the most specific (e.g. occupation.title rather than occupation).
    error = max(errors, key=lambda e: len(e["loc"]))
    path, expected = _walk(model, tuple(error["loc"]))
    where = prefix + path if path else prefix
    if error["type"] == "missing":
        return f"{source}: {where}: required field is missing; add it"
    others = _distinct_fields(errors) - 1
    more = f" (and problems in {others} more field{'s' if others > 1 else ''})" if others else ""
    return (
        f"{source}: {where}: expected {expected}, got {_describe_value(error.get('input'))}; "
        f"fix the value{more}"
    )


def _distinct_fields(errors: list[Any]) -> int:
    """How many different top-level fields have errors (union members report one field twice)."""
    return len({e["loc"][:1] for e in errors})


def _walk(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str, str]:
    """Follow pydantic's error location through the annotations: (field path, expected type)."""
    annotation: Any = model
    path = ""
    i = 0
    while i < len(loc):
        part = loc[i]
        annotation = _strip_none(annotation)
        if _is_model(annotation) and isinstance(part, str) and part in annotation.model_fields:
            path += f".{part}"
            annotation = annotation.model_fields[part].annotation
        elif _is_model(annotation) and isinstance(part, str):
            path += f".{part}"  # an extra field: any value is allowed, so this is rare
            annotation = Any
        elif typing.get_origin(annotation) is list and isinstance(part, int):
            path += f"[{part}]"
            annotation = typing.get_args(annotation)[0]
        elif typing.get_origin(annotation) is dict and isinstance(part, str):
            path += f".{part}"
            annotation = typing.get_args(annotation)[1]
        elif _is_union(annotation):
            # A union member's tag (a model's name, or pydantic's "dict[str,list[str]]"): step
            # into that member only if the error is inside it.
            members = [m for m in typing.get_args(annotation) if m is not type(None)]
            inner = next((m for m in members if _union_tag(m) == part), None)
            if inner is None or i == len(loc) - 1:
                break
            annotation = inner
        else:
            break
        i += 1
    return path, _describe_type(annotation)


def _union_tag(member: Any) -> str:
    """How pydantic names a union member in an error location."""
    return member.__name__ if _is_model(member) else str(member).replace(" ", "")


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (Union, types.UnionType)


def _strip_none(annotation: Any) -> Any:
    """``X | None`` -> ``X`` (null is allowed, so it is never what was expected)."""
    if _is_union(annotation):
        members = [m for m in typing.get_args(annotation) if m is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _describe_type(annotation: Any) -> str:
    """Plain words for a type, as users write JSON (not Python names)."""
    annotation = _strip_none(annotation)
    if _is_union(annotation):
        members = [m for m in typing.get_args(annotation) if m is not type(None)]
        return " or ".join(_describe_type(m) for m in members)
    simple = {str: "text", int: "an integer", float: "a number", bool: "true or false"}
    if annotation in simple:
        return simple[annotation]
    origin = typing.get_origin(annotation)
    if origin is list:
        item = typing.get_args(annotation)[0]
        return "a list of " + _plural(item)
    if origin is dict:
        value = typing.get_args(annotation)[1]
        return "an object whose values are " + _plural(value)
    if _is_model(annotation):
        fields = ", ".join(annotation.model_fields)
        # Short models list their fields ("an object {title, organization, description}").
        small = fields and len(annotation.model_fields) <= 4
        return f"an object {{{fields}}}" if small else "an object"
    return "a JSON value"


def _plural(annotation: Any) -> str:
    """Plural words for list items and dict values: "text", "integers", "lists of text", ..."""
    described = _describe_type(annotation)
    if described == "text":
        return "text"
    head, _, rest = described.removeprefix("an ").removeprefix("a ").partition(" ")
    return f"{head}s {rest}".rstrip()


def _describe_value(value: Any) -> str:
    """Plain words for what was found in the file."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _article(word: str) -> str:
    """'a' or 'an' before ``word``, by sound for numbers ("an 18-year-old") and vowels otherwise."""
    digits = re.match(r"\d+", word)
    if digits:
        number = digits.group()
        return "an" if number.startswith("8") or number in ("11", "18") else "a"
    return "an" if word[:1].lower() in "aeiou" else "a"


__all__ = [
    "LEGACY_GROUPS",
    "Behaviors",
    "Occupation",
    "Persona",
    "PersonaFragment",
    "Personality",
    "Preferences",
    "Relationship",
    "SpecKind",
    "deep_merge",
    "load_spec_file",
    "save_spec",
]
