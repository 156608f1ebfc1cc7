"""Driving the console in Debian's headless Chromium with Selenium: start the browser, sign in, wait for a page,
read a chart, keep screenshots, collect what the browser complained about."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from tests.conftest import ADMIN_TOKEN, missing_service

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_PATH", "/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000")
WAIT_S = 15


def start_chromium(profile_dir: str):
    """A fresh headless Chromium with its own profile; skips (fails in CI) when Chromium is not installed."""
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        missing_service(f"Chromium or chromedriver not installed ({CHROMIUM}, {CHROMEDRIVER}): "
                        "apt-get install chromium chromium-driver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing_service("selenium is not installed (pip install -e '.[dev]')")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Leave any alert() open, so a test can see it instead of Selenium dismissing it.
    options.set_capability("unhandledPromptBehavior", "ignore")
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def screenshot_dir() -> Path:
    """CONSOLE_SCREENSHOT_DIR, or a folder under the system temp dir."""
    path = Path(os.environ.get("CONSOLE_SCREENSHOT_DIR") or Path(tempfile.gettempdir()) / "console-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def usd_text(amount) -> str:
    """What the console shows for an amount: every digit down to 1e-9, at least cents (format.js usd())."""
    exact = Decimal(repr(amount) if isinstance(amount, float) else amount)
    fixed = format(exact.quantize(Decimal("1e-9"), rounding=ROUND_HALF_UP), "f")
    whole, fraction = fixed.split(".")
    return f"${int(whole):,}.{fraction.rstrip('0').ljust(2, '0')}"


@dataclass
class Console:
    """One browser on one live gateway."""

    driver: object
    url: str

    def open(self, route: str, page: str | None = None) -> None:
        """Go to #/route and wait for its page to be rendered (again, when it is the page already shown)."""
        target = f"{self.url}/console#/{route}"
        if self.driver.current_url == target:
            self.driver.refresh()
        else:
            self.driver.execute_script("if (document.body) document.body.dataset.state = 'navigating';")
            self.driver.get(target)
        self.wait_page(page or route.split("/")[0].split("?")[0])

    def wait_page(self, page: str) -> None:
        self.wait(lambda d: d.execute_script("return [document.body.dataset.page, document.body.dataset.state]")
                  == [page, "ready"], f"page {page} to be ready")

    def wait(self, condition, what: str):
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, WAIT_S).until(condition, f"waited {WAIT_S}s for {what}")

    def sign_in(self, token: str = ADMIN_TOKEN) -> None:
        self.driver.get(f"{self.url}/console")
        self.wait(lambda d: d.execute_script("return document.body.dataset.state") == "signin", "sign-in form")
        self.find("#signin-token").send_keys(token)
        self.find("#signin-submit").click()

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        """The rendered text of the first match, read in one script (a re-render cannot make it stale)."""
        return self.driver.execute_script(
            "const node = document.querySelector(arguments[0]); return node ? node.innerText.trim() : null;", css)

    def column(self, table_id: str, index: int) -> list[str]:
        """The texts of one column of a console table, top to bottom, read in one script."""
        return self.driver.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map(cell => cell.innerText.trim());",
            f"#{table_id} tbody tr td:nth-child({index + 1})")

    def chart(self, canvas_id: str) -> dict:
        """What Chart.js draws on a canvas: labels and each dataset's values."""
        return self.driver.execute_script(
            "const chart = Chart.getChart(document.getElementById(arguments[0]));"
            "return {labels: chart.data.labels, datasets: chart.data.datasets.map(d => d.data)};", canvas_id)

    def screenshot(self, name: str) -> Path:
        path = screenshot_dir() / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def alert_text(self) -> str | None:
        """The text of an open alert/confirm/prompt, or None."""
        from selenium.common.exceptions import NoAlertPresentException

        try:
            return self.driver.switch_to.alert.text
        except NoAlertPresentException:
            return None

    def policy_violations(self) -> list[str]:
        """Browser log lines about the Content-Security-Policy refusing something."""
        return [entry["message"] for entry in self.driver.get_log("browser")
                if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]]
