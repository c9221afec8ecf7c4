"""Running the dashboard: Streamlit serves ``app.py`` over a folder of aggregates, in a child
process of its own (``streamlit run`` owns its event loop and signal handlers).

Headless and on loopback unless asked: the page shows segment data and has no login.
"""

import importlib.util
import os
import subprocess
import sys
import time
import urllib.request

from ..errors import FastsegError
from ..serve.listen import bind, is_loopback, url

__all__ = ["check_installed", "check_port", "is_loopback", "start", "stop", "url"]

APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "app.py")
STARTUP_SECONDS = 60  # Streamlit starts in a few seconds; a slow machine gets some slack
_UNSPECIFIED = {"0.0.0.0", "::", ""}  # every interface: reached locally on loopback


def check_installed():
    """A one-line error naming the extra when Streamlit or matplotlib is missing."""
    missing = [m for m in ("streamlit", "matplotlib") if importlib.util.find_spec(m) is None]
    if missing:
        raise FastsegError(
            f"the dashboard needs {' and '.join(missing)}: pip install 'fastseg[dashboard]'"
        )


def check_port(host, port):
    """Fail before any work when nothing could listen on ``host``:``port`` (taken, or an
    address of no interface here), rather than once the aggregates are computed."""
    bind(host, port).close()


def command(folder, host, port):
    """The ``streamlit run`` command line serving ``folder``'s aggregates."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        APP,
        "--server.headless",
        "true",
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",  # no "Deploy" button: this is a viewer's page
        "--logger.level",
        "warning",  # its start-up notes repeat the address the caller prints
        "--",
        folder,
    ]


def start(folder, host, port):
    """The Streamlit server as a child process, once it answers; its own start-up banner is
    left out (the caller prints the address), its log and errors go to stderr."""
    child = subprocess.Popen(command(folder, host, port), stdout=subprocess.DEVNULL)
    try:
        wait_until_up(child, host, port)
    except BaseException:
        stop(child)
        raise
    return child


def wait_until_up(child, host, port, timeout=STARTUP_SECONDS):
    """Poll Streamlit's health endpoint until it answers; a clear error if the server ends or
    does not answer in time."""
    local = "127.0.0.1" if host in _UNSPECIFIED else host
    health = url(local, port) + "/_stcore/health"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
    deadline = time.monotonic() + timeout
    while child.poll() is None:
        try:
            with opener.open(health, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise FastsegError(f"the dashboard did not answer on {url(host, port)} in {timeout} s")
        time.sleep(0.2)
    raise FastsegError(
        f"the dashboard's server stopped as it started (exit status {child.returncode}); "
        "its messages are above"
    )


def stop(child, grace=10):
    """End the server: SIGTERM, then SIGKILL if it has not ended after ``grace`` seconds."""
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(grace)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
