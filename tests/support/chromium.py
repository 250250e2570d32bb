"""A real headless Chromium driven over the DevTools protocol on a pipe (no port, no extra package).

    with Chromium() as browser:
        page = browser.open(Path("report.html").resolve().as_uri())
        page.evaluate("document.querySelectorAll('svg').length")
        page.screenshot(Path("shot.png"))
        png_size(Path("shot.png"))  # (width, height) of a screenshot
        page.requests  # every URL the page asked for (Network.requestWillBeSent)

Chromium is started with `--remote-debugging-pipe`: it reads commands from fd 3 and writes
answers and events to fd 4, one JSON message per NUL-terminated chunk. Name resolution is
trapped (`--host-resolver-rules`), so a page that tried to reach the network would fail to, and
the attempt still shows in `requests`.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--remote-debugging-pipe",
]


def png_size(path: Path) -> Tuple[int, int]:
    """(width, height) in pixels, from the PNG's header chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def chromium_binary() -> Optional[str]:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Chromium:
    def __init__(self, timeout: float = 60.0, window: str = "1200,1600") -> None:
        self.timeout = timeout
        self.window = window
        self._proc: Optional[subprocess.Popen] = None
        self._next_id = 0
        self._buffer = b""
        self.events: List[Dict[str, Any]] = []

    def __enter__(self) -> Chromium:
        binary = chromium_binary()
        if binary is None:
            raise RuntimeError("no chromium on PATH: `make chromium` installs Debian's package")
        self._profile = tempfile.mkdtemp(prefix="chromium-test-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def child_fds() -> None:  # the protocol's fixed descriptors (dup2 makes them inheritable)
            read_end = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)  # out of the way of 3 and 4 first
            write_end = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        args = [binary, *FLAGS, f"--user-data-dir={self._profile}", f"--window-size={self.window}"]
        self._proc = subprocess.Popen(
            args,
            preexec_fn=child_fds,
            close_fds=False,  # Python's own descriptors are close-on-exec
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            try:
                self.send("Browser.close")
            except Exception:  # already gone
                pass
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)

    # ------------------------------------------------------------------ protocol

    def send(
        self, method: str, params: Optional[Dict[str, Any]] = None, session: Optional[str] = None
    ) -> Any:
        self._next_id += 1
        message: Dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, session: Optional[str] = None) -> Dict[str, Any]:
        for i, event in enumerate(self.events):
            if event.get("method") == method and (session is None or event.get("sessionId") == session):
                return self.events.pop(i)
        while True:
            event = self._read()
            if event.get("method") == method and (session is None or event.get("sessionId") == session):
                return event
            self.events.append(event)

    def _read(self) -> Dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed its DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    # ------------------------------------------------------------------ pages

    def open(self, url: str, width: Optional[int] = None, height: int = 900) -> Page:
        """The page at `url`; with `width`, laid out in a window of width x height CSS px.

        Headless Chromium will not make its window narrower than 500 px, so a phone's width is set
        by the protocol's device metrics (what DevTools' device toolbar does), at one pixel per CSS px,
        scrollbars overlaid as on a phone (they take no width from the page).
        """
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        if width is not None:
            metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
            self.send("Emulation.setDeviceMetricsOverride", metrics, session=session)
            self.send("Emulation.setScrollbarsHidden", {"hidden": True}, session=session)
        self.send("Network.enable", session=session)
        self.send("Page.enable", session=session)
        self.send("Page.navigate", {"url": url}, session=session)
        self.wait_for("Page.loadEventFired", session)
        return page


class Page:
    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser = browser
        self.session = session

    def evaluate(self, expression: str) -> Any:
        result = self.browser.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=self.session
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        params: Dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            size = self.browser.send("Page.getLayoutMetrics", session=self.session)["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        data = self.browser.send("Page.captureScreenshot", params, session=self.session)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    @property
    def requests(self) -> List[str]:
        """Every URL the page requested so far (the document itself included)."""
        return [
            e["params"]["request"]["url"]
            for e in self.browser.events
            if e.get("method") == "Network.requestWillBeSent" and e.get("sessionId") == self.session
        ]
