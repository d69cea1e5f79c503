"""Headless Chromium: the Regression (1-D) page trains, draws the exact fit with its knots, and its sliders redraw
it for an earlier epoch and fewer layers. The screenshot goes to out/screenshots/ for a human look."""
from __future__ import annotations

import pytest

from harness import HAS_CHROMIUM, severe_console_errors, shot, wait_for
from harness import element_text as text

pytestmark = pytest.mark.browser
if not HAS_CHROMIUM:
    pytest.skip("needs Chromium and chromedriver", allow_module_level=True)


def traces(driver) -> dict[str, int]:
    """The regression graph's traces: name -> number of x values (server figures send typed arrays: base64)."""
    return driver.execute_script("""
        const gd = document.querySelector('#rg-graph .js-plotly-plot');
        if (!gd || !gd.data) return {};
        const bytes = {f8: 8, f4: 4, i4: 4, u4: 4, i2: 2, u2: 2, i1: 1, u1: 1};
        const size = x => !x ? 0 : (x.bdata ? atob(x.bdata).length / bytes[x.dtype] : x.length);
        return Object.fromEntries(gd.data.map(t => [t.name, size(t.x)]));""") or {}


def move(driver, slider_id: str, key: str) -> None:
    from selenium.webdriver.common.by import By

    handle = driver.find_element(By.CSS_SELECTOR, f"#{slider_id} [role=slider]")
    handle.click()
    handle.send_keys(key)


def test_train_a_few_epochs_and_see_the_fit_with_its_knots(driver, app_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(app_url + "/regression?rg_widths=8,8&rg_epochs=12&rg_lr=0.03")
    wait_for(lambda: driver.execute_script(
        "const p = document.getElementById('page-regression'); return !!p && p.style.display === 'block'"), 30,
        message="the regression page")
    assert driver.find_element(By.ID, "rg-widths").get_attribute("value") == "8,8"
    driver.find_element(By.ID, "rg-train").click()
    wait_for(lambda: text(driver, "rg-summary").startswith("Epoch 12:"), 120, message="the trained run")
    wait_for(lambda: "layer 2 knots" in traces(driver), 30, message="the figure of the last epoch")
    shown = traces(driver)
    assert shown["fit"] >= 2 and shown["target"] > 0 and shown["train data"] > 0
    pieces = int(text(driver, "rg-summary").split(": ")[1].split(" linear pieces")[0].replace(",", ""))
    knots = shown["layer 1 knots"] + shown["layer 2 knots"]
    assert knots > 0 and shown["fit"] == knots + 2 == pieces + 1  # the fit's breakpoints: the knots and both ends
    assert "RMSE: train" in text(driver, "rg-summary")
    shot(driver, "regression-trained")

    move(driver, "rg-layer", Keys.HOME)  # knots of layer 1 only
    wait_for(lambda: "layer 2 knots" not in traces(driver) and "layer 1 knots" in traces(driver), 30,
             message="layer 2's knots to go")
    move(driver, "rg-epoch", Keys.HOME)  # the initial weights
    wait_for(lambda: text(driver, "rg-summary").startswith("Epoch 0:"), 30, message="epoch 0")
    shot(driver, "regression-epoch0-layer1")
    assert severe_console_errors(driver) == []
