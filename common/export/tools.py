"""Running converters quietly: their logs are kept and shown only when they fail (or with --verbose)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


class ConversionError(RuntimeError):
    """A converter or runtime failed; the message names the tool and ends with its last log lines."""


def log_tail(text: str, lines: int = 12) -> str:
    """The last non-empty `lines` of a tool's log, indented, for an error message."""
    kept = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join("    " + line for line in kept)


def run_tool(
    command: list[str], what: str, verbose: bool = False, timeout: float = 600, env: dict[str, str] | None = None
) -> str:
    """Run `command`, return its stdout; raise ConversionError with its log if it fails.

    stderr (TensorFlow's and the converters' chatter) is shown only with `verbose`. `env` adds to (or overrides)
    this process's environment for the tool.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"), **(env or {}))
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ConversionError(f"{what} could not run: {err}") from None
    if verbose:
        sys.stderr.write(done.stderr)
    if done.returncode != 0:
        raise ConversionError(f"{what} exited with code {done.returncode}:\n{log_tail(done.stderr + done.stdout)}")
    return done.stdout


@contextmanager
def native_output_captured(what: str, verbose: bool = False) -> Iterator[None]:
    """Send what C++ code writes to stdout/stderr to a file; its tail is added to an error raised inside.

    The TF Lite converter and interpreter log through C++ straight to the file
    descriptors, past Python's `sys.stderr`, so only redirecting those hides them.
    """
    if verbose:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode="w+") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        except Exception as err:
            sys.stdout.flush()
            sys.stderr.flush()
            log.seek(0)
            tail = log_tail(log.read())
            raise ConversionError(f"{what} failed: {err}" + (f"\n{tail}" if tail else "")) from err
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def size_bytes(path: Path) -> int:
    """Size of a file, or of every file under a folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
