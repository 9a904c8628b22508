"""What an operator does in Airflow 3.3's web UI (a React single-page app), as Selenium steps.

Selectors are the UI's own stable hooks, found by dumping the DOM of each page: `data-testid`s
(`trigger-dag-button`, `trigger-dag-submit`, `hitl-option-<option>`, `table-cell-<column>`,
`state-badge`), form fields named `element_<param>` and the subject links of the request list.
Every step waits for what it needs (the SPA renders after the page loads) instead of sleeping.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

OPEN_DIALOG = "[role=dialog][data-state=open]"
OPTION_BUTTONS = "[data-testid^='hitl-option-']"


class AirflowUI:
    def __init__(self, driver: WebDriver, base_url: str, artifacts: Path, timeout: float = 30):
        self.driver = driver
        self.base_url = base_url.rstrip("/")
        self.artifacts = artifacts
        self.timeout = timeout

    # --- plumbing -----------------------------------------------------------------------------

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def wait(self, condition, what: str, timeout: float | None = None):
        return WebDriverWait(self.driver, timeout or self.timeout, ignored_exceptions=(
            StaleElementReferenceException,)).until(condition, f"gave up waiting for {what}")

    def find(self, css: str, what: str, root=None) -> WebElement:
        scope = root or self.driver
        return self.wait(lambda _: next((e for e in scope.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()),
                                        None), what)

    def click(self, element: WebElement) -> None:
        """Click once the element stops moving (accordions and dialogs animate open)."""
        def clicked(_):
            try:
                element.click()
                return True
            except ElementClickInterceptedException:
                return False
        self.wait(clicked, f"{element.tag_name} {element.text!r} to take a click")

    def screenshot(self, name: str) -> Path:
        path = self.artifacts / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    # --- pages --------------------------------------------------------------------------------

    def log_in(self, username: str, password: str) -> None:
        """SimpleAuthManager's sign-in page, reached by opening any page."""
        self.open("/")
        self.find("input[name=username]", "the sign-in form").send_keys(username)
        self.driver.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(password)
        self.click(self.driver.find_element(By.CSS_SELECTOR, "button[type=submit]"))
        self.wait(lambda d: "/auth/login" not in d.current_url, "the sign-in to finish")

    def open_trigger_form(self, dag_id: str) -> WebElement:
        """The DAG page's Trigger button; returns the dialog with the params form."""
        self.open(f"/dags/{dag_id}")
        self.click(self.find("[data-testid=trigger-dag-button]", "the Trigger button"))
        dialog = self.find(OPEN_DIALOG, "the trigger dialog")
        self.find("[name^=element_]", "the params form", dialog)
        return dialog

    def field(self, root: WebElement, param: str) -> WebElement:
        return self.find(f"input[name=element_{param}]", f"the field of {param}", root)

    def set_switch(self, root: WebElement, param: str, on: bool) -> None:
        """A boolean param is a switch: its input is visually hidden, its label takes the click."""
        box = root.find_element(By.CSS_SELECTOR, f"input[name=element_{param}]")
        if box.is_selected() != on:
            self.click(box.find_element(By.XPATH, "./ancestor::label[1]"))
            self.wait(lambda _: box.is_selected() == on, f"{param} to be {'on' if on else 'off'}")

    def submit_trigger(self, dialog: WebElement) -> None:
        button = self.find("[data-testid=trigger-dag-submit]", "the form's Trigger button", dialog)
        self.wait(lambda _: button.is_enabled(), "the form to accept its input (Trigger enabled)")
        self.click(button)
        self.wait(EC.invisibility_of_element(dialog), "the trigger dialog to close")

    def pending_request(self, min_age: float) -> tuple[str, str] | None:
        """Browse -> Required Actions: (task id, link) of an unanswered request at least `min_age`
        seconds old, or None. The list does not refresh by itself, so each call reloads it."""
        self.open("/required_actions")
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=table-cell-subject] a") or
                  "No Required Actions" in d.find_element(By.TAG_NAME, "body").text, "the request list")
        for row in self.driver.find_elements(By.CSS_SELECTOR, "tbody tr"):
            answered = row.find_elements(By.CSS_SELECTOR, "[data-testid=table-cell-responded_at] time")
            created = row.find_elements(By.CSS_SELECTOR, "[data-testid=table-cell-created_at] time")
            if answered or not created:
                continue
            age = datetime.now(timezone.utc) - datetime.fromisoformat(created[0].get_attribute("datetime"))
            if age.total_seconds() >= min_age:
                task = row.find_element(By.CSS_SELECTOR, "[data-testid=table-cell-task_display_name]").text
                link = row.find_element(By.CSS_SELECTOR, "[data-testid=table-cell-subject] a").get_dom_attribute("href")
                return task, link
        return None

    def open_request(self, link: str) -> list[WebElement]:
        """Click a request in the list (its subject links to the task's Required Action tab); returns
        its option buttons once they are shown under the rendered markdown body."""
        self.click(self.find(f"[data-testid=table-cell-subject] a[href='{link}']", "the request's link"))
        self.find(OPTION_BUTTONS, "the request's option buttons")
        return self.driver.find_elements(By.CSS_SELECTOR, OPTION_BUTTONS)

    def request_body(self) -> WebElement:
        """The rendered markdown of the open request (the panel holding the option buttons)."""
        return self.find(OPTION_BUTTONS, "the option buttons").find_element(
            By.XPATH, "./ancestor::*[.//table][1]")

    def choose(self, button: WebElement) -> None:
        """Click an option and wait until the UI has recorded the answer (the buttons disable)."""
        self.click(button)
        self.wait(lambda _: not button.is_enabled(), f"the answer {button.text!r} to be recorded")

    def open_run(self, dag_id: str, run_id: str) -> None:
        self.open(f"/dags/{dag_id}/runs/{quote(run_id)}")

    def run_state(self, run_id: str) -> str:
        """The state badge next to the run's id on the run page."""
        badge = self.wait(EC.visibility_of_element_located((By.XPATH, (
            f"//h2[normalize-space()='{run_id}']/following-sibling::*[@data-testid='state-badge']"))),
            "the run's state badge")
        return badge.text.strip().lower()

    def open_run_tab(self, name: str) -> str:
        """A tab of the run page that a plugin adds (an external view: an iframe); returns its text."""
        self.click(self.wait(EC.element_to_be_clickable((By.XPATH, f"//a[normalize-space()='{name}']")),
                             f"the run page's {name} tab"))
        self.wait(EC.frame_to_be_available_and_switch_to_it((By.TAG_NAME, "iframe")), f"the {name} frame")
        try:
            return self.find("body h1, body p", f"the content of {name}").find_element(By.XPATH, "/html/body").text
        finally:
            self.driver.switch_to.default_content()

    def wait_for_run_state(self, dag_id: str, run_id: str, state: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self.open_run(dag_id, run_id)
        while self.run_state(run_id) != state:
            assert time.monotonic() < deadline, f"the run page did not show {state!r} within {timeout:.0f} s"
            time.sleep(1)
            self.driver.refresh()
