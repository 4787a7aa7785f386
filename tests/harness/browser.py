"""A real headless Chromium for tests, driven over the Chrome DevTools
Protocol (CDP) with aiohttp's WebSocket client (no browser-automation
dependency).

``AsyncBrowser`` launches ``/usr/bin/chromium`` (or ``$CHROMIUM``) in a fresh
profile directory with ``--remote-debugging-port=0``, reads the DevTools URL
Chromium prints on stderr, opens one page and records, from then on, every
request URL the page makes (``Network.requestWillBeSent``, and WebSockets
by ``Network.webSocketCreated``), console messages
(``Runtime.consoleAPICalled``), uncaught exceptions
(``Runtime.exceptionThrown``) and browser log entries (``Log.entryAdded``:
failed loads, refused WebSockets, CSP violations). It navigates, evaluates
JavaScript, waits for a JavaScript condition with a timeout, takes PNG
screenshots, reads the navigation timing and catches downloads.

``Browser`` is the same for synchronous tests (the e2e tests drive
subprocesses): it runs an ``AsyncBrowser`` on an event loop in a thread of
its own, so events keep being recorded between calls.

Closing (also when start-up fails) kills Chromium's whole process group
and removes its profile directory: no Chromium outlives a test.
``ensure_chromium()`` installs the distribution's package when Chromium is
missing and we are root (CI), and skips the test otherwise.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from powernode.devnet.wait import WaitAbort, WaitTimeout
from tests.harness.network import async_wait_until
from tests.harness.packages import apt_install

T = TypeVar("T")

DEFAULT_CHROMIUM = "/usr/bin/chromium"
START_TIMEOUT = 60.0  # a cold Chromium on a loaded 2-core box takes seconds
CALL_TIMEOUT = 60.0
DEVTOOLS_LINE = re.compile(r"DevTools listening on (ws://\S+)")
# The contract's flags: nothing but the page talks to the network.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-zygote",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--mute-audio",
    "--password-store=basic",
    "--remote-debugging-port=0",
)
# What makes a console/log entry a failure of the page.
ERROR_LEVELS = frozenset({"error", "assert"})


class BrowserError(Exception):
    """Chromium did not start, a CDP command failed, or page JavaScript threw."""


@dataclass(frozen=True)
class ConsoleEntry:
    """One thing the page reported: ``source`` is ``console`` (a console.*
    call), ``exception`` (uncaught) or ``log`` (the browser's own log)."""

    source: str
    level: str
    text: str
    url: str = ""

    @property
    def is_error(self) -> bool:
        return self.source == "exception" or self.level in ERROR_LEVELS

    def __str__(self) -> str:
        where = f" ({self.url})" if self.url else ""
        return f"{self.source}.{self.level}: {self.text}{where}"


@dataclass(frozen=True)
class NavigationTiming:
    """The page's navigation timing, milliseconds since navigation start."""

    response_end: float
    dom_content_loaded: float
    load_event: float


def chromium_path() -> str | None:
    """``$CHROMIUM``, else /usr/bin/chromium, else ``chromium`` on PATH."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    if os.access(DEFAULT_CHROMIUM, os.X_OK):
        return DEFAULT_CHROMIUM
    return shutil.which("chromium")


def ensure_chromium() -> str:
    """The Chromium to run; as root without one, installs the distribution's
    ``chromium`` package first (as the netns tests install iproute2);
    otherwise skips the calling test, saying why."""
    if os.environ.get("CHROMIUM"):
        found = chromium_path()
        if found is None:
            pytest.skip(f"$CHROMIUM={os.environ['CHROMIUM']} is not an executable")
        return found
    if os.geteuid() == 0 and shutil.which("apt-get") is not None:
        # Looked for under the install lock: another test worker may be
        # installing it this moment, and the binary is there before the
        # libraries it needs.
        apt_install("chromium", lambda: chromium_path() is not None)
        found = chromium_path()
        assert found is not None, "apt-get installed chromium but there is no /usr/bin/chromium"
        return found
    found = chromium_path()
    if found is None:
        pytest.skip("no Chromium here (install the chromium package, or set $CHROMIUM)")
    return found


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header; BrowserError if it is no PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise BrowserError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


class AsyncBrowser:
    """One headless Chromium with one page (see the module docstring).

    ``async with AsyncBrowser() as b: await b.goto(url)``. Recorded:
    ``requests`` (URLs, in order), ``console`` (every ``ConsoleEntry``);
    ``errors()`` is the failing part of ``console``.
    """

    def __init__(
        self,
        *,
        executable: str | None = None,
        width: int = 1280,
        height: int = 800,
        start_timeout: float = START_TIMEOUT,
        call_timeout: float = CALL_TIMEOUT,
    ) -> None:
        self.executable = executable or ensure_chromium()
        self.width = width
        self.height = height
        self.start_timeout = start_timeout
        self.call_timeout = call_timeout
        self.requests: list[str] = []
        self.console: list[ConsoleEntry] = []
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._answers: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: list[
            tuple[str, Callable[[dict[str, Any]], bool], asyncio.Future[Any]]
        ] = []
        self._session_id = ""
        self._downloads: dict[str, str] = {}  # guid -> suggested file name
        self._download_dir: Path | None = None

    # --- life cycle ------------------------------------------------------------

    async def __aenter__(self) -> AsyncBrowser:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def profile_dir(self) -> Path | None:
        return self._dir

    async def start(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="pn-chromium-"))
        profile = self._dir / "profile"
        stderr_path = self._dir / "stderr.log"
        with stderr_path.open("wb") as stderr:
            # A session (and process group) of its own, so close() kills the
            # renderer and helper processes with the browser.
            self._proc = subprocess.Popen(
                [
                    self.executable,
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={profile}",
                    f"--window-size={self.width},{self.height}",
                    "about:blank",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        try:
            url = await async_wait_until(
                lambda: self._devtools_url(stderr_path),
                timeout=self.start_timeout,
                interval=0.05,
                what="Chromium's DevTools URL on its stderr",
            )
        except (WaitAbort, WaitTimeout) as exc:
            tail = stderr_path.read_text(errors="replace")[-2000:]
            raise BrowserError(f"{exc}; its stderr:\n{tail}") from None
        assert url is not None
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(url, max_msg_size=0, heartbeat=None)
        self._reader = asyncio.create_task(self._read())
        target = await self.send("Target.createTarget", {"url": "about:blank"}, page=False)
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, page=False
        )
        self._session_id = attached["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            await self.send(f"{domain}.enable")
        # A fixed viewport: screenshots the same size on every machine.
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )

    def _devtools_url(self, stderr_path: Path) -> str | None:
        assert self._proc is not None
        text = stderr_path.read_text(errors="replace")
        m = DEVTOOLS_LINE.search(text)
        if m:
            return m.group(1)
        if self._proc.poll() is not None:
            raise WaitAbort(
                f"{self.executable} exited with {self._proc.returncode} before it listened"
            )
        return None

    async def close(self) -> None:
        """Stop Chromium (politely, then its whole process group by force),
        drop the connection and remove the profile directory. Idempotent."""
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.send("Browser.close", page=False), 5)
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._proc is not None:
            proc, self._proc = self._proc, None
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(proc.wait, 5)
            # Even after a clean exit: zygote or renderer processes of the
            # group may still be winding down.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            await asyncio.to_thread(proc.wait)
        for fut in self._answers.values():
            if not fut.done():
                fut.set_exception(BrowserError("browser closed"))
        self._answers.clear()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    # --- protocol --------------------------------------------------------------

    async def send(
        self, method: str, params: dict[str, Any] | None = None, *, page: bool = True
    ) -> dict[str, Any]:
        """One CDP command, to the page's session (``page``) or to the
        browser; its result, or BrowserError with the protocol's error."""
        if self._ws is None:
            raise BrowserError("browser not started")
        msg_id = next(self._ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if page:
            msg["sessionId"] = self._session_id
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._answers[msg_id] = fut
        await self._ws.send_str(json.dumps(msg))
        try:
            answer = await asyncio.wait_for(fut, self.call_timeout)
        finally:
            self._answers.pop(msg_id, None)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error'].get('message')} {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            doc = json.loads(msg.data)
            if "id" in doc:
                fut = self._answers.get(doc["id"])
                if fut is not None and not fut.done():
                    fut.set_result(doc)
            elif "method" in doc:
                self._on_event(doc["method"], doc.get("params", {}))
        for fut in self._answers.values():
            if not fut.done():
                fut.set_exception(BrowserError("DevTools connection closed"))

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Network.webSocketCreated":
            self.requests.append(params["url"])
        elif method == "Runtime.consoleAPICalled":
            text = " ".join(_remote_text(a) for a in params.get("args", []))
            frame = (params.get("stackTrace") or {}).get("callFrames") or [{}]
            self.console.append(
                ConsoleEntry("console", params["type"], text, frame[0].get("url", ""))
            )
        elif method == "Runtime.exceptionThrown":
            d = params["exceptionDetails"]
            text = (d.get("exception") or {}).get("description") or d.get("text", "")
            self.console.append(ConsoleEntry("exception", "error", text, d.get("url", "")))
        elif method == "Log.entryAdded":
            e = params["entry"]
            self.console.append(ConsoleEntry("log", e["level"], e["text"], e.get("url", "")))
        elif method == "Browser.downloadWillBegin":
            self._downloads[params["guid"]] = params["suggestedFilename"]
        for listener in list(self._listeners):
            name, pred, fut = listener
            if name == method and not fut.done() and pred(params):
                fut.set_result(params)
                self._listeners.remove(listener)

    def _expect(
        self, method: str, pred: Callable[[dict[str, Any]], bool] = lambda p: True
    ) -> asyncio.Future[Any]:
        """A future for the next ``method`` event matching ``pred``; made
        before the command that causes it, so the event cannot be missed."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._listeners.append((method, pred, fut))
        return fut

    # --- the page --------------------------------------------------------------

    async def goto(self, url: str, *, timeout: float = 30.0) -> None:
        """Navigate; for a new document, wait for its load event (a change of
        only the ``#fragment`` has none: it returns once navigated)."""
        loaded = self._expect("Page.loadEventFired")
        try:
            nav = await self.send("Page.navigate", {"url": url})
            if nav.get("errorText"):
                raise BrowserError(f"navigating to {url}: {nav['errorText']}")
            if nav.get("loaderId"):
                await asyncio.wait_for(loaded, timeout)
        finally:
            if not loaded.done():
                loaded.cancel()
            self._listeners = [entry for entry in self._listeners if entry[2] is not loaded]

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (promises
        awaited); BrowserError with the JavaScript error if it throws."""
        r = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            text = (d.get("exception") or {}).get("description") or d.get("text")
            raise BrowserError(f"{expression[:200]!r} threw: {text}")
        return r["result"].get("value")

    async def wait_for(self, expression: str, *, timeout: float = 30.0, what: str = "") -> Any:
        """Poll ``expression`` until it is truthy and return its value;
        ``WaitTimeout`` naming ``what`` (or the expression) after ``timeout``."""
        return await async_wait_until(
            lambda: self.evaluate(expression),
            timeout=timeout,
            interval=0.05,
            what=what or expression,
        )

    async def add_init_script(self, source: str) -> None:
        """Run ``source`` in every new document before the page's own scripts
        (DevTools-injected, so the page's CSP does not apply to it)."""
        await self.send("Page.addScriptToEvaluateOnNewDocument", {"source": source})

    async def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        """A PNG of the viewport (or of the whole page) written to ``path``."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = await self.send("Page.getLayoutMetrics")
            size = metrics["cssContentSize"]
            params["captureBeyondViewport"] = True
            params["clip"] = {
                "x": 0,
                "y": 0,
                "width": max(self.width, int(size["width"])),
                "height": int(size["height"]),
                "scale": 1,
            }
        r = await self.send("Page.captureScreenshot", params)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(r["data"]))
        return path

    async def navigation_timing(self) -> NavigationTiming:
        """The current document's navigation timing (after its load event)."""
        t = await self.evaluate(
            "(() => { const n = performance.getEntriesByType('navigation')[0];"
            " return n ? {r: n.responseEnd, d: n.domContentLoadedEventEnd, l: n.loadEventEnd}"
            " : null; })()"
        )
        if not t:
            raise BrowserError("no navigation timing entry")
        return NavigationTiming(float(t["r"]), float(t["d"]), float(t["l"]))

    async def allow_downloads(self, directory: Path) -> None:
        """Save downloads into ``directory`` under the names the page gives."""
        directory.mkdir(parents=True, exist_ok=True)
        self._download_dir = directory
        await self.send(
            "Browser.setDownloadBehavior",
            {"behavior": "allow", "downloadPath": str(directory), "eventsEnabled": True},
            page=False,
        )

    async def download(self, trigger: str, *, timeout: float = 30.0) -> Path:
        """Evaluate ``trigger`` (e.g. a click on a download link) and wait for
        the download it starts to complete; the saved file's path."""
        if self._download_dir is None:
            raise BrowserError("call allow_downloads first")
        done = self._expect(
            "Browser.downloadProgress", lambda p: p["state"] in ("completed", "canceled")
        )
        try:
            await self.evaluate(trigger)
            progress = await asyncio.wait_for(done, timeout)
        finally:
            self._listeners = [entry for entry in self._listeners if entry[2] is not done]
        if progress["state"] != "completed":
            raise BrowserError(f"download {progress['guid']} was canceled")
        return self._download_dir / self._downloads[progress["guid"]]

    def errors(self) -> list[ConsoleEntry]:
        return [e for e in self.console if e.is_error]


def _remote_text(arg: dict[str, Any]) -> str:
    """A console argument (a CDP RemoteObject) as text."""
    if "value" in arg:
        v = arg["value"]
        return v if isinstance(v, str) else json.dumps(v)
    return str(arg.get("description") or arg.get("unserializableValue") or arg.get("type"))


class Browser:
    """``AsyncBrowser`` for synchronous code: its event loop runs in a thread
    of its own (so events are recorded between calls); every method blocks
    until done. ``with Browser() as b: b.goto(url)``."""

    def __init__(self, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._async: AsyncBrowser | None = None
        try:
            self._async = AsyncBrowser(**kwargs)
            self._run(self._async.start())
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    @property
    def b(self) -> AsyncBrowser:
        if self._async is None:
            raise BrowserError("browser closed")
        return self._async

    def close(self) -> None:
        if self._async is not None:
            browser, self._async = self._async, None
            self._run(browser.close())
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        if not self._loop.is_closed():
            self._loop.close()

    @property
    def requests(self) -> list[str]:
        return list(self.b.requests)

    @property
    def console(self) -> list[ConsoleEntry]:
        return list(self.b.console)

    @property
    def pid(self) -> int | None:
        return self.b.pid

    def errors(self) -> list[ConsoleEntry]:
        return self.b.errors()

    def goto(self, url: str, *, timeout: float = 30.0) -> None:
        self._run(self.b.goto(url, timeout=timeout))

    def evaluate(self, expression: str) -> Any:
        return self._run(self.b.evaluate(expression))

    def wait_for(self, expression: str, *, timeout: float = 30.0, what: str = "") -> Any:
        return self._run(self.b.wait_for(expression, timeout=timeout, what=what))

    def add_init_script(self, source: str) -> None:
        self._run(self.b.add_init_script(source))

    def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        return self._run(self.b.screenshot(path, full_page=full_page))

    def navigation_timing(self) -> NavigationTiming:
        return self._run(self.b.navigation_timing())

    def allow_downloads(self, directory: Path) -> None:
        self._run(self.b.allow_downloads(directory))

    def download(self, trigger: str, *, timeout: float = 30.0) -> Path:
        return self._run(self.b.download(trigger, timeout=timeout))

    def call(self, fn: Callable[[AsyncBrowser], Awaitable[T]]) -> T:
        """Anything else of the async API: ``b.call(lambda a: a.send(...))``."""

        async def run() -> T:
            return await fn(self.b)

        return self._run(run())
