"""The installed llama.cpp runs on any x86-64 machine with AVX2, not only on the one that built it.

A native build (llama.cpp's default) compiles in what the build machine's CPU reports: on a machine
with AVX-512 and AMX it emits instructions that crash an AVX2-only machine, and AMX tile
instructions that crash a virtual machine which reports AMX but does not let a process use it. The
README's install command builds with GGML_NATIVE=OFF and AVX2 as the ceiling; this test reads the
machine code of the installed libraries, so a green run on an AVX-512 machine also vouches for an
AVX2-only one.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.local_model

_SPEC = importlib.util.find_spec("llama_cpp")
if _SPEC is None and os.environ.get("TROUPE_REQUIRE_LOCAL_MODEL") == "1":
    raise RuntimeError("TROUPE_REQUIRE_LOCAL_MODEL=1 but llama-cpp-python is not installed: see the README's install command")

# AVX-512 shows as zmm registers, opmask registers ({%k1}) or EVEX-only mnemonics; AMX as tile instructions.
_AVX512 = re.compile(r"%zmm\d+|\{%k[1-7]\}|%k[0-7]\b|\bvpternlog|\bvpermt2|\bkmov[bwdq]\b")
_AMX = re.compile(r"\b(ldtilecfg|sttilecfg|tileloadd|tileloaddt1|tilestored|tilezero|tilerelease|tdpb[su][su]d|tdpbf16ps|tdpfp16ps)\b")


def _libraries() -> list[Path]:
    assert _SPEC is not None and _SPEC.submodule_search_locations
    lib = Path(next(iter(_SPEC.submodule_search_locations))) / "lib"
    return sorted({p.resolve() for p in lib.glob("*.so*") if p.is_file()})  # each library once, not per symlink


@pytest.mark.skipif(_SPEC is None, reason="llama-cpp-python is not installed")
@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump (binutils) is not installed")
def test_llama_cpp_libraries_use_no_avx512_and_no_amx() -> None:
    libraries = _libraries()
    assert any(p.name.startswith("libggml-cpu") for p in libraries), [p.name for p in libraries]
    offenders: dict[str, list[str]] = {}
    for library in libraries:
        listing = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(library)], capture_output=True, text=True, check=True).stdout
        found = sorted({m.group(0) for m in _AVX512.finditer(listing)} | {m.group(0) for m in _AMX.finditer(listing)})
        if found:
            offenders[library.name] = found[:8]
    assert offenders == {}, (
        f"llama.cpp was built for this machine's CPU, not portably: {offenders}; reinstall it as the README's "
        "install command does (CMAKE_ARGS with -DGGML_NATIVE=OFF), with pip install --force-reinstall --no-cache-dir --no-deps llama-cpp-python"
    )
