"""A tiny WebDriver client (urllib only) for headless Debian Chromium via chromedriver.

Enough of the W3C protocol to open a file, run a script, read the console and take
a screenshot; no selenium. The network is cut twice: Chromium's own background
traffic is switched off by flags, and the page's network is emulated offline over
the DevTools protocol before the file is opened.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
]


class WebDriverError(RuntimeError):
    """chromedriver answered with an error."""


class Browser:
    """One chromedriver process and one headless Chromium session."""

    def __init__(self, chromium: str, chromedriver: str, port: int, width: int, height: int):
        self._profile = tempfile.mkdtemp(prefix="boxkite-chromium-")
        self._driver = subprocess.Popen(
            [chromedriver, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._base = f"http://127.0.0.1:{port}"
        try:
            self._wait_ready()
            capabilities = {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": [
                        *CHROMIUM_FLAGS,
                        f"--user-data-dir={self._profile}",
                        f"--window-size={width},{height}",
                    ],
                },
                "goog:loggingPrefs": {"browser": "ALL"},
            }
            answer = self._call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})
            self._session = f"/session/{answer['sessionId']}"
            self.cdp("Network.enable", {})
            self.cdp(
                "Network.emulateNetworkConditions",
                {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0},
            )
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self._call("GET", "/status").get("ready"):
                    return
            except (OSError, WebDriverError):
                pass
            if time.monotonic() > deadline or self._driver.poll() is not None:
                raise WebDriverError("chromedriver did not start")
            time.sleep(0.1)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self._base + path, data, {"Content-Type": "application/json"}, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise WebDriverError(f"{method} {path}: {exc.code} {detail[:500]}") from None

    def session(self, method: str, path: str, body: Any = None) -> Any:
        return self._call(method, self._session + path, body)

    def cdp(self, command: str, params: dict[str, Any]) -> Any:
        """A Chrome DevTools Protocol command, through chromedriver."""
        return self.session("POST", "/goog/cdp/execute", {"cmd": command, "params": params})

    def open(self, path: Path) -> None:
        self.session("POST", "/url", {"url": path.resolve().as_uri()})

    def run(self, script: str, *args: Any) -> Any:
        """Run ``script`` as a function body in the page; its return value."""
        return self.session("POST", "/execute/sync", {"script": script, "args": list(args)})

    def console(self) -> list[dict[str, Any]]:
        """Console messages and page errors since the last call."""
        return self.session("POST", "/se/log", {"type": "browser"})

    def screenshot(self) -> bytes:
        """PNG of the viewport."""
        return base64.b64decode(self.session("GET", "/screenshot"))

    def close(self) -> None:
        try:
            if hasattr(self, "_session"):
                self.session("DELETE", "")
        except (OSError, WebDriverError):
            pass
        finally:
            self._driver.terminate()
            try:
                self._driver.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._driver.kill()
                self._driver.wait()
            shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
