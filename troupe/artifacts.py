"""ArtifactExporter: write what a simulation produced (documents, extractions) as json, txt, md or docx.

As TinyTroupe's exporter, an artifact goes to ``<base_output_folder>/<content_type>/<name>.<format>``.
Text formats are written as given; ``docx`` is built with python-docx (the ``docs`` extra), and
Markdown content becomes real Word headings, lists and paragraphs through markdown-it (the parser
rich already brings). Every file is written atomically, so a reader never sees half an artifact.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Literal

from .errors import SpecError

TargetFormat = Literal["json", "txt", "md", "docx"]
FORMATS: tuple[str, ...] = ("json", "txt", "md", "docx")
_UNSAFE = re.compile(r"[\\/:*?\"<>|\x00-\x1f]")


def _text_of(data: dict[str, Any] | str) -> str:
    """The text of an artifact: a string as is, a document's ``content`` field, else its JSON."""
    if isinstance(data, str):
        return data
    if isinstance(data.get("content"), str):
        return data["content"]
    return json.dumps(data, ensure_ascii=False, indent=2)


def _atomic_write(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".artifact-", suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(payload)
    os.replace(tmp, path)


def markdown_to_docx(text: str) -> bytes:
    """A Word document from Markdown: headings, bullet and numbered lists, paragraphs, bold and italic runs."""
    import io

    try:
        import docx  # type: ignore[import-untyped]
    except ImportError:
        raise ImportError('docx export needs python-docx: pip install -e ".[docs]"') from None
    from markdown_it import MarkdownIt

    document = docx.Document()
    tokens = MarkdownIt("commonmark").parse(text)
    lists: list[str] = []
    block: tuple[str, int] = ("p", 0)
    for token in tokens:
        if token.type in ("bullet_list_open", "ordered_list_open"):
            lists.append("List Bullet" if token.type == "bullet_list_open" else "List Number")
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif token.type == "heading_open":
            block = ("h", int(token.tag[1]))
        elif token.type == "paragraph_open":
            block = ("p", 0)
        elif token.type in ("fence", "code_block"):
            document.add_paragraph(token.content.rstrip("\n"))
        elif token.type == "inline":
            if block[0] == "h":
                paragraph = document.add_heading(level=min(block[1], 9))
            else:
                paragraph = document.add_paragraph(style=lists[-1] if lists else None)
            bold = italic = False
            for child in token.children or []:
                if child.type == "strong_open":
                    bold = True
                elif child.type == "strong_close":
                    bold = False
                elif child.type == "em_open":
                    italic = True
                elif child.type == "em_close":
                    italic = False
                elif child.type in ("text", "code_inline"):
                    run = paragraph.add_run(child.content)
                    run.bold, run.italic = bold or None, italic or None
                elif child.type in ("softbreak", "hardbreak"):
                    paragraph.add_run(" ")
            block = ("p", 0)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


class ArtifactExporter:
    """``ArtifactExporter(folder).export("Report", data, content_type="document", target_format="docx")``."""

    def __init__(self, base_output_folder: str | os.PathLike[str]) -> None:
        self.base_output_folder = Path(base_output_folder)

    def path_for(self, artifact_name: str, content_type: str, target_format: str) -> Path:
        for label, value in (("artifact_name", artifact_name), ("content_type", content_type)):
            if not value or _UNSAFE.search(value) or value in (".", ".."):
                raise SpecError(f"{label}: {value!r} cannot be a file name; use letters, digits, spaces, '-', '_' or '.'")
        return self.base_output_folder / content_type / f"{artifact_name}.{target_format}"

    def export(
        self,
        artifact_name: str,
        artifact_data: dict[str, Any] | str,
        content_type: str,
        content_format: str | None = None,
        target_format: str = "txt",
        verbose: bool = False,
    ) -> Path:
        """Write the artifact and return its path. content_format ("md" or "txt") says how to read a text for docx."""
        if target_format not in FORMATS:
            raise SpecError(f"target_format: {target_format!r} is not supported; use one of {', '.join(FORMATS)}")
        path = self.path_for(artifact_name, content_type, target_format)
        if target_format == "json":
            data = artifact_data if isinstance(artifact_data, dict) else {"content": artifact_data}
            payload = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
        elif target_format == "docx":
            text = _text_of(artifact_data)
            payload = markdown_to_docx(text if content_format != "txt" else text.replace("\n", "\n\n"))
        else:
            payload = _text_of(artifact_data).encode("utf-8")
        _atomic_write(path, payload)
        return path
