"""node.log: rotation by size, reopening after a move, category levels, and
the text line's level column."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from powernode.logkit import emit, render_value
from powernode.node.engine_log import LOGGERS
from powernode.node.logging_setup import (
    CATEGORIES,
    LibraryLog,
    log_levels,
    reopen_log_files,
    set_category_level,
    setup_logging,
)
from powernode.state.registry import ENGINES

ROOT = logging.getLogger("powernode")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """setup_logging takes over the process's "powernode" logger; give it back
    as the other tests expect it (propagating to pytest's capture)."""
    yield
    for handler in ROOT.handlers:
        handler.close()
    ROOT.handlers.clear()
    ROOT.propagate = True
    ROOT.setLevel(logging.NOTSET)
    for category in CATEGORIES:
        set_category_level(category, None)
    top = logging.getLogger()
    for handler in [h for h in top.handlers if isinstance(h, LibraryLog)]:
        top.removeHandler(handler)


def test_rotates_by_size_keeping_backups(tmp_path: Path) -> None:
    log_file = tmp_path / "node.log"
    setup_logging(fmt="text", level="info", file=log_file, max_bytes=2000, backups=2)
    log = logging.getLogger("powernode.chain")
    for i in range(200):
        emit(log, "block.connected", height=i, hash=b"\x01" * 32)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["node.log", "node.log.1", "node.log.2"]
    for p in tmp_path.iterdir():
        assert 0 < p.stat().st_size <= 2000, p
    # The newest line is in node.log, the ones before it in .1.
    assert "height=199 " in log_file.read_text()
    assert "height=199 " not in (tmp_path / "node.log.1").read_text()


def test_no_rotation_by_default_and_reopen_after_a_move(tmp_path: Path) -> None:
    log_file = tmp_path / "node.log"
    setup_logging(fmt="text", level="info", file=log_file)
    log = logging.getLogger("powernode.node")
    for i in range(500):
        emit(log, "node.started", n=i)
    assert [p.name for p in tmp_path.iterdir()] == ["node.log"]

    log_file.rename(tmp_path / "node.log.old")  # as logrotate does
    emit(log, "before.reopen")
    assert reopen_log_files() == 1
    emit(log, "after.reopen")
    assert "before.reopen" in (tmp_path / "node.log.old").read_text()
    new = log_file.read_text()
    assert "after.reopen" in new and "before.reopen" not in new


def test_category_levels_and_level_column(tmp_path: Path) -> None:
    log_file = tmp_path / "node.log"
    setup_logging(
        fmt="text", level="info", file=log_file, categories={"net": "debug", "rpc": "error"}
    )
    assert log_levels()["categories"] == {
        **dict.fromkeys(CATEGORIES),
        "net": "debug",
        "rpc": "error",
    }
    emit(logging.getLogger("powernode.p2p"), "peer.dial_failed", logging.DEBUG, peer="x")
    emit(logging.getLogger("powernode.sync"), "sync.started", logging.DEBUG)
    emit(logging.getLogger("powernode.rpc"), "rpc.refused", logging.WARNING)
    emit(logging.getLogger("powernode.chain"), "block.connected", logging.DEBUG)
    emit(logging.getLogger("powernode.chain"), "chain.reorg", logging.WARNING)
    emit(logging.getLogger("powernode.chain"), "block.invalid", logging.INFO)
    lines = log_file.read_text().splitlines()
    assert [line.split()[3] for line in lines] == [
        "peer.dial_failed",
        "sync.started",
        "chain.reorg",
        "block.invalid",
    ]
    # The level column is as wide as WARNING, so the logger column lines up.
    assert len({line.index(line.split()[2]) for line in lines}) == 1
    set_category_level("net", None)
    emit(logging.getLogger("powernode.p2p"), "peer.timeout", logging.DEBUG)
    assert "peer.timeout" not in log_file.read_text()
    with pytest.raises(KeyError):
        set_category_level("nope", "debug")
    with pytest.raises(ValueError):
        set_category_level("net", "loud")


def test_every_engine_with_txs_has_a_category() -> None:
    covered = {name for names in CATEGORIES.values() for name in names}
    for logger in LOGGERS.values():
        assert logger.name in covered, f"no log category covers {logger.name}"
    assert set(LOGGERS) == {e.name for e in ENGINES if e.handlers}


# --- a value never breaks its line; libraries' records are node events ------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain", "plain"),
        ("", '""'),
        (None, '""'),
        (True, "true"),
        (False, "false"),
        (b"\x01\xff", "01ff"),
        (1.23456, "1.235"),
        ("a b", '"a b"'),
        ('say "hi"=x', '"say \\"hi\\"=x"'),
        ("x\n2026-12-08T00:00:00.000Z WARNING node chain.reorg", None),
        ("a\rb\tc\\d", '"a\\rb\\tc\\\\d"'),
        ("\u2028\x00\x85", '"\\u2028\\u0000\\u0085"'),
        ("ünïcode", "ünïcode"),
    ],
)
def test_a_value_is_written_on_one_line(value: object, text: str | None) -> None:
    out = render_value(value)
    if text is not None:
        assert out == text
    assert len(out.splitlines()) == 1 and out.isprintable()


def test_a_peers_newline_cannot_forge_a_log_line(tmp_path: Path) -> None:
    log_file = tmp_path / "node.log"
    setup_logging(fmt="text", level="info", file=log_file)
    forged = "evil\n2026-12-08T00:00:00.000Z WARNING node node.stopped"
    emit(logging.getLogger("powernode.p2p"), "peer.connected", peer="1.2.3.4:1", agent=forged)
    (line,) = log_file.read_text().splitlines()
    assert ' agent="evil\\n2026-12-08T00:00:00.000Z WARNING node node.stopped"' in line


def test_a_librarys_record_is_one_node_event(tmp_path: Path) -> None:
    log_file = tmp_path / "node.log"
    setup_logging(fmt="text", level="info", file=log_file, stderr=False)
    try:
        raise ZeroDivisionError("boom")
    except ZeroDivisionError:
        logging.getLogger("asyncio").exception("Task exception was never retrieved")
    logging.getLogger("aiohttp.client").info("below WARNING: not logged")
    (line,) = log_file.read_text().splitlines()
    assert " ERROR   node library.message source=asyncio " in line
    assert 'msg="Task exception was never retrieved"' in line
    assert "exc=" in line and "ZeroDivisionError: boom" in line


def test_a_malformed_http_request_is_the_clients_fault_at_debug(tmp_path: Path) -> None:
    from aiohttp.http_exceptions import BadHttpMessage

    log_file = tmp_path / "node.log"
    setup_logging(fmt="json", level="info", file=log_file, stderr=False)

    def bad_request() -> None:
        try:
            raise BadHttpMessage("bad Content-Length")
        except BadHttpMessage:
            logging.getLogger("aiohttp.server").exception(
                "Error handling request from %s", "127.0.0.1"
            )

    bad_request()
    assert log_file.read_text() == ""  # debug, and the rpc category is at info
    set_category_level("rpc", "debug")
    bad_request()
    (line,) = log_file.read_text().splitlines()
    ev = json.loads(line)
    assert (ev["level"], ev["logger"], ev["event"]) == ("debug", "rpc", "http.bad_request")
    assert (ev["peer"], ev["status"], ev["reason"]) == ("127.0.0.1", 400, "bad Content-Length")


def test_a_librarys_debug_lines_stay_out_and_a_failure_does_not_raise_into_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log_file = tmp_path / "node.log"
    setup_logging(fmt="text", level="debug", file=log_file, stderr=False)
    chatty = logging.getLogger("somelib")
    chatty.setLevel(logging.DEBUG)
    chatty.debug("chatty debug")
    chatty.info("chatty info")
    assert "library.message" not in log_file.read_text()

    def broken(self: LibraryLog, record: logging.LogRecord) -> None:
        raise ValueError("a bug in the adapter")

    monkeypatch.setattr(LibraryLog, "_adopt", broken)
    chatty.warning("still logged by the library without an exception")
    assert "Logging error" in capsys.readouterr().err


def test_a_first_request_that_is_not_http_is_a_bad_request(tmp_path: Path) -> None:
    from aiohttp.http_exceptions import BadHttpMethod

    log_file = tmp_path / "node.log"
    setup_logging(fmt="text", level="info", file=log_file, stderr=False)
    set_category_level("rpc", "debug")
    try:
        raise BadHttpMethod("\\x16\\x03\\x01")
    except BadHttpMethod as exc:
        # as aiohttp tells it: at debug, on aiohttp.server
        logging.getLogger("aiohttp.server").debug(
            "Error handling request from %s", "127.0.0.1", exc_info=exc
        )
    (line,) = log_file.read_text().splitlines()
    assert " DEBUG   rpc http.bad_request peer=127.0.0.1 status=400 " in line


def test_a_body_that_breaks_its_encoding_drained_after_the_answer_is_a_bad_request(
    tmp_path: Path,
) -> None:
    # aiohttp drains an unread body after the answer; a corrupt gzip body
    # then fails there, as a RequestPayloadError around the HTTP error.
    from aiohttp.http_exceptions import ContentEncodingError
    from aiohttp.web_protocol import RequestPayloadError

    log_file = tmp_path / "node.log"
    setup_logging(fmt="text", level="info", file=log_file, stderr=False)
    set_category_level("rpc", "debug")
    try:
        try:
            raise ContentEncodingError("Can not decode content-encoding: gzip")
        except ContentEncodingError as inner:
            raise RequestPayloadError("Payload is not completed") from inner
    except RequestPayloadError as exc:
        logging.getLogger("aiohttp.server").error("Unhandled exception", exc_info=exc)
    (line,) = log_file.read_text().splitlines()
    assert ' DEBUG   rpc http.bad_request peer="" status=400 ' in line
    assert 'reason="Can not decode content-encoding: gzip"' in line
