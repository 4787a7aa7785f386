"""The real-Chromium harness (tests/harness/browser.py) against a tiny aiohttp
site on 127.0.0.1: what the explorer test relies on it to catch, it catches."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import WSMsgType, web

from powernode.devnet.wait import WaitTimeout
from tests.harness.browser import AsyncBrowser, Browser, BrowserError, ensure_chromium, png_size
from tests.harness.network import async_wait_until

HOME = """<!doctype html><html><head><title>tiny</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/style.css"></head>
<body><h1>tiny</h1><script src="/app.js"></script></body></html>"""

APP = """
console.log("just saying");
console.error("boom", 42);
fetch("/data.json").then(r => r.json()).then(d => { document.body.dataset.data = d.x; });
const ws = new WebSocket(`ws://${location.host}/ws`);
ws.onmessage = e => { document.body.dataset.ws = e.data; };
setTimeout(() => { throw new Error("kaput"); }, 0);
"""

TALL = """<!doctype html><html><head><link rel="icon" href="data:,"></head>
<body><script src="/tall.js"></script></body></html>"""

TALL_JS = 'document.body.style.height = "3000px"; document.body.style.margin = "0";'

DOWNLOAD = """<!doctype html><html><head><link rel="icon" href="data:,"></head>
<body><a data-action="save" href="#">save</a><script src="/save.js"></script></body></html>"""

# The explorer saves a proof this way: bytes -> Blob -> object URL -> a
# link with a download name, clicked.
SAVE_JS = """
document.querySelector("[data-action=save]").addEventListener("click", ev => {
  ev.preventDefault();
  const blob = new Blob([new Uint8Array([0, 1, 2, 250, 255])]);
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = "five.bin";
  a.click();
});
"""


async def _ws(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_str("hello")
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            break
    return ws


def static(
    body: str, content_type: str = "text/html"
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type=content_type)

    return handler


@pytest.fixture
async def site() -> AsyncIterator[str]:
    app = web.Application()
    for path, body, ctype in (
        ("/", HOME, "text/html"),
        ("/app.js", APP, "text/javascript"),
        ("/style.css", "h1 { color: green }", "text/css"),
        ("/data.json", '{"x": "seven"}', "application/json"),
        ("/tall", TALL, "text/html"),
        ("/tall.js", TALL_JS, "text/javascript"),
        ("/download", DOWNLOAD, "text/html"),
        ("/save.js", SAVE_JS, "text/javascript"),
    ):
        app.router.add_get(path, static(body, ctype))
    app.router.add_get("/ws", _ws)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
def chromium() -> str:
    return ensure_chromium()


def group_alive(pgid: int) -> list[int]:
    """Processes of the group that are still running (zombies waiting for
    init to reap them count as gone)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the fields after the parenthesised command: state, ppid, pgrp, ...
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            alive.append(int(entry.name))
    return alive


async def test_console_errors_and_exceptions_are_caught(site: str, chromium: str) -> None:
    async with AsyncBrowser(executable=chromium) as b:
        await b.goto(site + "/")
        await async_wait_until(
            lambda: any(e.source == "exception" for e in b.console), what="the exception"
        )
        errors = b.errors()
        assert [(e.source, e.level, e.text) for e in errors if e.source == "console"] == [
            ("console", "error", "boom 42")
        ]
        (exc,) = [e for e in errors if e.source == "exception"]
        assert exc.text.startswith("Error: kaput") and exc.url == site + "/app.js"
        # a console.log is recorded but is no error
        assert ("console", "log", "just saying") in [(e.source, e.level, e.text) for e in b.console]
        assert all(e.text != "just saying" for e in errors)


async def test_requests_are_recorded_and_failed_loads_are_errors(site: str, chromium: str) -> None:
    async with AsyncBrowser(executable=chromium) as b:
        await b.goto(site + "/")
        assert await b.wait_for("document.body.dataset.data") == "seven"
        assert await b.wait_for("document.body.dataset.ws") == "hello"
        ws_url = site.replace("http://", "ws://") + "/ws"
        for url in (site + "/", site + "/style.css", site + "/app.js", site + "/data.json", ws_url):
            assert url in b.requests, (url, b.requests)
        # the page's own requests only: data: URLs are no request to anyone
        assert all(u.startswith((site, ws_url)) for u in b.requests), b.requests

        # a load that fails is in the browser's log, as an error
        await b.evaluate("fetch('/missing.png').then(r => r.status)")
        await async_wait_until(
            lambda: any("404" in e.text for e in b.errors()), what="the 404 in the log"
        )
        assert site + "/missing.png" in b.requests


async def test_a_screenshot_is_a_png_of_the_viewport(
    site: str, chromium: str, tmp_path: Path
) -> None:
    async with AsyncBrowser(executable=chromium, width=800, height=600) as b:
        await b.goto(site + "/tall")
        await b.wait_for("document.body.style.height === '3000px'")
        shot = await b.screenshot(tmp_path / "shots" / "view.png")
        assert png_size(shot.read_bytes()) == (800, 600)
        whole = await b.screenshot(tmp_path / "whole.png", full_page=True)
        assert png_size(whole.read_bytes()) == (800, 3000)
        assert b.errors() == []


async def test_navigation_timing_and_waits(site: str, chromium: str) -> None:
    async with AsyncBrowser(executable=chromium) as b:
        await b.goto(site + "/tall")
        t = await b.navigation_timing()
        assert 0 < t.response_end <= t.dom_content_loaded <= t.load_event
        with pytest.raises(WaitTimeout, match="the never-set flag"):
            await b.wait_for("window.neverSet", timeout=0.3, what="the never-set flag")
        with pytest.raises(BrowserError, match="ReferenceError"):
            await b.evaluate("noSuchName + 1")
        # a change of only the fragment: no new document, no load event
        await b.evaluate("window.marker = 1")
        await b.goto(site + "/tall#/elsewhere")
        assert await b.evaluate("[window.marker, location.hash]") == [1, "#/elsewhere"]


async def test_a_download_is_saved_under_its_name(site: str, chromium: str, tmp_path: Path) -> None:
    async with AsyncBrowser(executable=chromium) as b:
        await b.allow_downloads(tmp_path / "dl")
        await b.goto(site + "/download")
        saved = await b.download("document.querySelector('[data-action=save]').click()")
        assert saved == tmp_path / "dl" / "five.bin"
        assert saved.read_bytes() == bytes([0, 1, 2, 250, 255])
        # a Blob URL's download is no request to anyone
        assert b.requests == [site + "/download", site + "/save.js"]


def test_the_sync_browser_leaves_nothing_behind(chromium: str) -> None:
    with Browser(executable=chromium) as b:
        b.goto("data:text/html,<p id=p>sync</p>")
        assert b.wait_for("document.getElementById('p').textContent") == "sync"
        pid = b.pid
        profile = b.b.profile_dir
        assert pid is not None and profile is not None and profile.is_dir()
        assert group_alive(pid)
    assert group_alive(pid) == []
    assert not profile.exists()
    with pytest.raises(BrowserError, match="closed"):
        b.evaluate("1")


async def test_a_chromium_that_fails_to_start_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\necho 'no display, no luck' >&2\nexit 3\n")
    fake.chmod(0o755)
    b = AsyncBrowser(executable=str(fake), start_timeout=30)
    with pytest.raises(
        BrowserError, match="exited with 3 before it listened; its stderr:\nno display"
    ):
        async with b:
            pass
    assert b.pid is None and b.profile_dir is None
    assert list(temp.iterdir()) == []  # its profile and stderr removed
