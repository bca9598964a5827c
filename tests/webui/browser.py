"""Headless Debian chromium on the page of the server that run.sh started (with --api-key), and HTTP to it."""

import json
import os
import shutil
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

BASE_URL = os.environ.get("CRIA_BASE_URL", "http://127.0.0.1:8080")
MODEL = os.environ.get("CRIA_MODEL_ID", "smollm2-135m-instruct")
API_KEY = os.environ.get("CRIA_API_KEY_FOR_TESTS", "")
ARTIFACTS = os.environ.get("WEBUI_ARTIFACTS", "target/webui-artifacts")
DESKTOP = (1280, 900)
PHONE = (390, 844)  # an iPhone 12-14's CSS viewport


def http(method, path, body=None, key=API_KEY, timeout=120, extra=None):
    """(status, headers, text) of a request to the server; never raises on an HTTP error status."""
    headers = {"Content-Type": "application/json", **(extra or {})}
    if key:
        headers["Authorization"] = "Bearer " + key
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE_URL + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()


def chromium_driver():
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--lang=en-US", f"--window-size={DESKTOP[0]},{DESKTOP[1]}"]:
        options.add_argument(arg)
    # Debian's driver, never one Selenium Manager would download.
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_script_timeout(60)
    return driver


class Page:
    """The chat page as a user sees it, with waits that fail with a message instead of hanging."""

    def __init__(self, driver):
        self.d = driver

    def open(self):
        self.d.get(BASE_URL + "/")
        self.wait(lambda: self.js("return !!window.CriaApp"), "the page's script to start")

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def el(self, css):
        return self.d.find_element(By.CSS_SELECTOR, css)

    def els(self, css):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def wait(self, condition, what, timeout=60.0, every=0.05):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(every)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    def open_settings(self):
        """Opens the settings (on a narrow screen, the drawer they are in first)."""
        if self.el("#open-sidebar").is_displayed():
            if not self.js("return document.body.classList.contains('sidebar-open')"):
                self.el("#open-sidebar").click()
            self.wait(lambda: self.js(
                "return document.getElementById('sidebar').getBoundingClientRect().left >= 0"),
                "the side bar to slide in")
        self.js("document.getElementById('settings').open = true")

    def set_field(self, field_id, value):
        """Types into a settings field and commits it (a change event), as a user tabbing out does."""
        self.open_settings()
        field = self.el("#" + field_id)
        field.clear()
        field.send_keys(str(value))
        field.send_keys(Keys.TAB)

    def new_chat(self):
        self.open_settings()
        self.el("#new-chat").click()

    def send(self, text):
        box = self.el("#input")
        box.clear()
        box.send_keys(text)
        box.send_keys(Keys.ENTER)

    def last_reply(self):
        """(state, text, meta) of the last assistant message on screen, or None."""
        return self.js("""
            const m = [...document.querySelectorAll('#messages .msg[data-role=assistant]')].pop();
            return m ? [m.dataset.state, m.querySelector('.body').innerText, m.querySelector('.meta').innerText]
                     : null;""")

    def stored_chat(self):
        """The current conversation as kept in localStorage."""
        return self.js("""
            const s = JSON.parse(localStorage.getItem('cria.chats.v1'));
            return s.list.find((c) => c.id === s.current);""")

    def watch_reply(self, timeout=120.0):
        """Polls the last reply until it stops streaming; returns (texts seen while streaming, final state)."""
        self.wait(lambda: self.last_reply() is not None, "a reply to appear")
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state, text, meta = self.last_reply()
            if state != "streaming":
                return seen, (state, text, meta)
            if not seen or seen[-1] != text:
                seen.append(text)
            time.sleep(0.02)
        raise AssertionError(f"the reply still streams after {timeout} s")

    def screenshot(self, name):
        path = os.path.join(ARTIFACTS, name)
        self.d.save_screenshot(path)
        return path
