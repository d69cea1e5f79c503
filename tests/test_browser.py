"""Headless Chromium against the real app (``python app.py`` in a subprocess).

Every page loads without console errors, training animates, sliders redraw, the MNIST hover reads out
the image under the pointer, the URL carries the state, bad uploads are explained, and two browser
sessions training at once keep their own state. Screenshots go to out/screenshots/ for a human look.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from harness import HAS_CHROMIUM, chrome, epoch_shown, severe_console_errors, shot, upload, wait_for
from harness import element_text as text

pytestmark = pytest.mark.browser
if not HAS_CHROMIUM:
    pytest.skip("needs Chromium and chromedriver", allow_module_level=True)

PAGES = {"playground": "/", "pruning": "/pruning", "earlybird": "/earlybird", "mnist": "/mnist",
         "experiments": "/experiments"}


def graph_signature(driver, graph_id: str) -> str:
    """What a graph shows: its plotly traces (names, sizes) and, for painted graphs, each panel's frame,
    shading and the layers it draws ("layer 1", ...), once painted. Changes whenever it is redrawn with new data."""
    return driver.execute_script(f"""
        const gd = document.querySelector('#{graph_id} .js-plotly-plot');
        if (!gd || !gd.data) return '';
        const size = x => !x ? 0 : (x.bdata ? x.bdata.length : x.length);  // server figures send typed arrays
        const traces = gd.data.map(t => t.name + ':' + size(t.x));
        const sv = window.splineviz, painters = sv && sv.painter ? sv.painter.all('{graph_id}') : [];
        if (painters.some(p => p.frame && (p.busy || p.pending || !p.painted))) return '';  // a paint under way
        const panels = painters.filter(p => p.frame).map(p => {{
          const shown = sv.frame.shownLayer(p.frame, p.view.layer == null ? null : p.view.layer);
          const layers = Array.from({{length: shown + 1}}, (_, l) => 'layer ' + (l + 1));
          return ['frame ' + sv.painter.keyOf(p.frame), p.view.shade || 'class'].concat(layers).join(',');
        }});
        return traces.concat(panels).join('|');""")


def show_page(driver, name: str) -> None:
    """Click a page's link in the header and wait until the page shows."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, f"nav-{name}").click()
    wait_for(lambda: driver.execute_script(
        f"const p = document.getElementById('page-{name}'); return p && p.style.display === 'block'"), 30,
        message=f"the {name} page")


def open_playground(driver, url: str) -> None:
    driver.get(url)
    wait_for(lambda: text(driver, "pg-stat-epoch") == "0" and graph_signature(driver, "pg-graph"), 60,
             message="the first partition")


def set_slider(driver, slider_id: str, key: str, presses: int = 1) -> None:
    """Move a dcc.Slider with the keyboard, as a user would."""
    from selenium.webdriver.common.by import By

    handle = driver.find_element(By.CSS_SELECTOR, f"#{slider_id} [role=slider]")
    handle.click()
    for _ in range(presses):
        handle.send_keys(key)


def test_every_page_loads_without_console_errors(driver, app_url: str) -> None:
    for name, path in PAGES.items():
        driver.get(app_url + path)
        wait_for(lambda: driver.execute_script(
            f"const p = document.getElementById('page-{name}'); return p && p.style.display === 'block'"), 30,
            message=f"{name} to show")
        wait_for(lambda: driver.execute_script(f"""
            const page = document.getElementById('page-{name}');
            const graphs = page.querySelectorAll('.dash-graph').length;
            return page.querySelectorAll('.js-plotly-plot').length === graphs;"""), 60,
            message=f"the {name} figures")
        if name == "playground":
            wait_for(lambda: graph_signature(driver, "pg-graph"), 60, message="the playground figure")
        shot(driver, f"page-{name}")
        assert severe_console_errors(driver) == [], name


def test_training_animates_and_sliders_redraw(driver, app_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_playground(driver, app_url)
    first = graph_signature(driver, "pg-graph")
    driver.find_element(By.ID, "pg-play").click()
    seen = set()
    wait_for(lambda: seen.add(text(driver, "pg-stat-epoch")) or len(seen) >= 4, 90, 0.05,
             message="several training epochs to be drawn")
    wait_for(lambda: epoch_shown(driver) >= 30, 120, message="epoch 30")
    driver.find_element(By.ID, "pg-play").click()  # pause
    assert graph_signature(driver, "pg-graph") != first
    shot(driver, "playground-trained")

    before = graph_signature(driver, "pg-graph")
    set_slider(driver, "pg-epoch", Keys.HOME)
    wait_for(lambda: text(driver, "pg-stat-epoch") == "0", 10, message="the epoch slider to rewind")
    assert graph_signature(driver, "pg-graph") != before

    set_slider(driver, "pg-layer", Keys.HOME)
    wait_for(lambda: "layer 2" not in graph_signature(driver, "pg-graph"), 10, message="layer filter")
    assert "layer 1" in graph_signature(driver, "pg-graph")
    set_slider(driver, "pg-layer", Keys.END)
    driver.find_element(By.CSS_SELECTOR, "#pg-shade input[value=code]").click()
    wait_for(lambda: "code" in graph_signature(driver, "pg-graph"), 10, message="code shading")

    driver.find_element(By.ID, "pg-replay").click()
    wait_for(lambda: epoch_shown(driver) >= 10, 20, 0.05, message="replay to advance")
    shot(driver, "playground-replay-codes")
    assert severe_console_errors(driver) == []


def test_url_carries_the_state(driver, app_url: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(app_url + "/?dataset=circles&layers=2&width=8")
    wait_for(lambda: driver.execute_script(
        "return document.querySelectorAll('#pg-layer .dash-slider-mark, #pg-layer [class*=mark]').length") > 0, 30)
    wait_for(lambda: graph_signature(driver, "pg-graph") and "layer 3" not in graph_signature(driver, "pg-graph"),
             60, message="a two-layer partition")
    assert "Circles" in driver.find_element(By.ID, "pg-dataset").text
    driver.find_element(By.CSS_SELECTOR, "#pg-activation input[value=leaky_relu]").click()
    wait_for(lambda: "act=leaky_relu" in driver.current_url, 10, message="the URL to follow the controls")
    assert "dataset=circles" in driver.current_url and "layers=2" in driver.current_url


def test_bad_upload_is_explained(driver, app_url: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    open_playground(driver, app_url)
    garbage = tmp_path / "model.pt"
    garbage.write_bytes(b"definitely not a state dict")
    upload(driver, "pg-upload", garbage)
    message = wait_for(lambda: text(driver, "pg-alert"), 30, message="an upload error")
    assert "Could not load model.pt" in message and "not a readable" in message
    shot(driver, "playground-bad-upload")


def test_mnist_hover_shows_the_image_and_prediction(driver, app_url: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver.get(app_url + "/mnist?mn_epochs=1")
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#mn-thumbs-a img"), 30, message="thumbnails")
    driver.find_element(By.ID, "mn-train").click()
    wait_for(lambda: "heatmap" in driver.execute_script(
        "const gd = document.querySelector('#mn-graph .js-plotly-plot');"
        "return gd && gd.data ? gd.data.map(t => t.type).join(',') : ''"), 120, message="the traced slice")
    area = driver.find_element(By.CSS_SELECTOR, "#mn-graph .nsewdrag")
    ActionChains(driver).move_to_element(area).move_by_offset(15, -25).perform()  # near the centre
    readout = wait_for(lambda: text(driver, "mn-hover-text"), 30, message="the hover readout")
    assert "predicted" in readout
    wait_for(lambda: "·A" in graph_signature(driver, "mn-hover-image") or driver.execute_script(
        "const gd = document.querySelector('#mn-hover-image .js-plotly-plot');"
        "return gd && gd.data && gd.data[0] && gd.data[0].type === 'heatmap'"), 30, message="the hovered image")
    # a thumbnail click picks another image and retraces the slice
    caption = text(driver, "mn-caption-b")
    driver.find_elements(By.CSS_SELECTOR, "#mn-thumbs-b img")[2].click()
    wait_for(lambda: text(driver, "mn-caption-b") not in ("", caption), 20, message="a new image B")
    shot(driver, "mnist-hover")
    assert severe_console_errors(driver) == []


def test_two_browser_sessions_train_without_mixing(app_url: str) -> None:
    from selenium.webdriver.common.by import By

    drivers = [chrome(), chrome()]
    try:
        open_playground(drivers[0], app_url + "/?dataset=moons&layers=3&epochs=30")
        open_playground(drivers[1], app_url + "/?dataset=xor&layers=1&width=8&epochs=30")
        for d in drivers:
            d.find_element(By.ID, "pg-play").click()
        for d in drivers:
            wait_for(lambda: text(d, "pg-stat-epoch") == "30", 150, message="both runs to finish")
        moons, xor = (graph_signature(d, "pg-graph") for d in drivers)
        assert "layer 3" in moons and "layer 2" not in xor  # each kept its own architecture
        assert "Two moons" in drivers[0].find_element(By.ID, "pg-dataset").text
        assert "XOR" in drivers[1].find_element(By.ID, "pg-dataset").text
        for i, d in enumerate(drivers):
            shot(d, f"concurrent-session-{i}")
            assert severe_console_errors(d) == []
    finally:
        for d in drivers:
            d.quit()


def test_pruning_earlybird_and_experiments_run_from_the_browser(driver, app_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_playground(driver, app_url + "/?epochs=20&layers=2")
    driver.find_element(By.ID, "pg-play").click()
    wait_for(lambda: text(driver, "pg-stat-epoch") == "20", 90, message="a trained model")

    show_page(driver, "pruning")
    wait_for(lambda: "after node pruning" in driver.execute_script(
        "const gd = document.querySelector('#pr-graph .js-plotly-plot');"
        "return gd && gd.layout ? JSON.stringify(gd.layout.annotations) : ''"), 30, message="before/after panels")
    before = graph_signature(driver, "pr-graph")
    set_slider(driver, "pr-sparsity", Keys.ARROW_RIGHT, 6)
    wait_for(lambda: graph_signature(driver, "pr-graph") != before, 60, message="the sparsity slider to redraw")
    driver.find_element(By.ID, "pr-finetune").click()
    wait_for(lambda: "fine-tuned" in text(driver, "pr-summary"), 60, message="fine-tuning")
    driver.find_element(By.ID, "pr-sweep").click()
    wait_for(lambda: len(driver.execute_script(
        "const gd = document.querySelector('#pr-curves .js-plotly-plot'); return gd && gd.data ? gd.data : []"))
        == 3, 120, message="node, weight and spline curves")
    shot(driver, "pruning-run")

    show_page(driver, "earlybird")
    driver.find_element(By.ID, "eb-run").click()
    wait_for(lambda: "Ticket at epoch" in text(driver, "eb-summary") or "No ticket" in text(driver, "eb-summary"),
             90, message="the early-bird run")
    shot(driver, "earlybird-run")

    show_page(driver, "experiments")
    driver.find_element(By.ID, "ex-run").click()  # the default experiment, quick mode
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#ex-output .result-graph .js-plotly-plot"), 120,
             message="the experiment's figures")
    shot(driver, "experiments-run")
    assert severe_console_errors(driver) == []
