"""LiteLLM's proxy for `make bench-compare`, in its own venv (bench/.litellm-venv), never a project dependency."""

from __future__ import annotations

import subprocess

import harness


def ensure() -> str | None:
    """Install litellm[proxy] from PyPI on first use; None when it is there, else why it could not be."""
    if (harness.LITELLM_BIN / "litellm").exists():
        return None
    venv = harness.LITELLM_BIN.parent
    steps = [["python3", "-m", "venv", str(venv)],
             [str(harness.LITELLM_BIN / "pip"), "install", "-q", "--upgrade", "pip"],
             [str(harness.LITELLM_BIN / "pip"), "install", "-q", "litellm[proxy]"]]
    print("installing litellm[proxy] into bench/.litellm-venv ...", flush=True)
    for step in steps:
        try:
            result = subprocess.run(step, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"`{' '.join(step)}` failed: {error}"
        if result.returncode != 0:
            return f"`{' '.join(step)}` failed: {(result.stderr or result.stdout).strip()[-400:]}"
    return None


def version() -> str:
    """The installed litellm version, as pip reports it."""
    out = subprocess.run([str(harness.LITELLM_BIN / "pip"), "show", "litellm"], capture_output=True, text=True)
    return next((x.split(":", 1)[1].strip() for x in out.stdout.splitlines() if x.startswith("Version:")), "?")
