"""Where packaged data lives: prompts/ and the default config.ini.

In a checkout (or an editable install) they sit at the repository root; a wheel carries them in
troupe/_data/. Looking in both places keeps one source of truth in the repository.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def data_path(name: str) -> Path:
    """Path of a packaged resource (``"prompts"`` or ``"config.ini"``)."""
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"troupe's packaged resource {name!r} is missing from {_PACKAGE_DIR}; reinstall troupe "
        "(pip install --force-reinstall troupe)"
    )
