"""Fixtures: a client for the server that run.sh started, and a helper that starts extra servers."""

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

import openai
import pytest

BASE_URL = os.environ.get("CRIA_BASE_URL", "http://127.0.0.1:8080")
MODEL = os.environ.get("CRIA_MODEL_ID", "smollm2-135m-instruct")


@pytest.fixture(scope="session")
def model():
    return MODEL


@pytest.fixture(scope="session")
def base_url():
    return BASE_URL


@pytest.fixture(scope="session")
def client():
    return openai.OpenAI(base_url=BASE_URL + "/v1", api_key="unused", max_retries=0, timeout=120)


def http(method, url, body=None, headers=None, timeout=60):
    """(status, headers, text) of a raw HTTP request; never raises on an HTTP error status."""
    data = body if isinstance(body, (bytes, type(None))) else body.encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def error_body(text):
    """The OpenAI error object of a response body, checked for its shape."""
    err = json.loads(text)["error"]
    assert {"message", "type", "param", "code"} <= set(err), err
    return err


def metric(base_url, name, headers=None):
    _, _, text = http("GET", base_url + "/metrics", headers=headers)
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


class Server:
    """A second `cria serve` with its own flags (for auth, queue limits, shutdown), on `model`."""

    def __init__(self, *flags, model=MODEL):
        binary = os.environ.get("CRIA_BIN")
        if not binary:
            pytest.fail("CRIA_BIN is not set: run these tests through tests/openai/run.sh")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [binary, "serve", "-m", model, "--port", str(self.port), *flags]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("extra server died: " + self.proc.stderr.read())
            try:
                if http("GET", self.url + "/health", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail("extra server not healthy after 120 s")

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode


@pytest.fixture
def server_factory():
    started = []

    def start(*flags, model=MODEL):
        s = Server(*flags, model=model)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()
