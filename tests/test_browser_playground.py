"""The Playground as a teacher uses it, in headless Chromium against the real app (``python app.py``).

Every read-out is checked against an independent oracle: the region under the pointer against a torch forward
pass at that point (its pattern and logits) and against sampling (its area), a unit's weights against the
model's tensors, point counts against the dataset. Screenshots go to out/screenshots/ for a human look.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import HAS_CHROMIUM, epoch_shown, marker_x, severe_console_errors, shot, upload, wait_for
from harness import element_text as text
from splineviz.nets import mlp
from splineviz.web.state import PlaygroundConfig, architecture, build, config_dataset

pytestmark = pytest.mark.browser
if not HAS_CHROMIUM:
    pytest.skip("needs Chromium and chromedriver", allow_module_level=True)


def open_playground(driver, url: str) -> None:
    driver.get(url)
    wait_for(lambda: text(driver, "pg-stat-epoch") == "0" and painted(driver), 60, message="the first partition")


def painted(driver) -> bool:
    return bool(driver.execute_script(
        "const p = window.splineviz.painter.of('pg-graph', 0); return p && p.painted !== null && !!p.frame;"))


def attrs(driver, selector: str) -> dict:
    """The data-* attributes of the first element matching ``selector`` ({} while there is none)."""
    return driver.execute_script(
        f"const e = document.querySelector({json.dumps(selector)}); return e ? Object.assign({{}}, e.dataset) : {{}};")


def set_control(driver, control_id: str, value) -> None:
    """Change a control as its own change would (Dash's set_props), e.g. a dropdown."""
    driver.execute_script(f"window.dash_clientside.set_props({json.dumps(control_id)}, {{value: {json.dumps(value)}}})")


def click(driver, element_id: str) -> None:
    """Scroll an element to the middle of the window (clear of the sticky header) and click it."""
    from selenium.webdriver.common.by import By

    element = driver.find_element(By.ID, element_id)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def patterns(model: torch.nn.Sequential, points: np.ndarray) -> list[np.ndarray]:
    """Activation pattern of every hidden layer at each point, by a plain forward pass (the oracle)."""
    out, h = [], torch.as_tensor(points, dtype=torch.float32)
    with torch.no_grad():
        for module in model:
            h = module(h)
            if isinstance(module, torch.nn.Linear) and module is not model[-1]:
                out.append((h > 0).numpy())
    return out


def test_hover_explains_the_region_under_the_pointer(driver, app_url: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    open_playground(driver, app_url + "/")
    area = driver.find_element(By.CSS_SELECTOR, "#pg-graph .nsewdrag")
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".unit-thumb"), 30, message="the settled view")
    ActionChains(driver).move_to_element(area).move_by_offset(40, -30).perform()
    info = wait_for(lambda: attrs(driver, "#pg-hover-text .region-info"), 30, message="the region read-out")
    shot(driver, "playground-hover")

    config = PlaygroundConfig()
    data = config_dataset(config)
    model = build(architecture(config, data)).eval()  # the untrained net of the default settings
    point = np.array([[float(info["x"]), float(info["y"])]])
    expected = ["".join("1" if on else "0" for on in layer[0]) for layer in patterns(model, point)]
    assert info["pattern"].split("|") == expected  # the tracer's codes are the forward pass's signs
    with torch.no_grad():
        logits = model(torch.as_tensor(point, dtype=torch.float32))[0].numpy()
    assert np.allclose([float(v) for v in info["logits"].split(",")], logits, atol=1e-4)
    # the painter darkens the region the server explains
    assert driver.execute_script("return window.splineviz.painter.of('pg-graph', 0).view.region") == int(
        info["region"])

    # the exact area against sampling: the share of uniform points with the same pattern in every layer
    rng = np.random.default_rng(0)
    xmin, xmax, ymin, ymax = data.bounds
    sample = np.column_stack([rng.uniform(xmin, xmax, 200_000), rng.uniform(ymin, ymax, 200_000)])
    same = np.ones(len(sample), dtype=bool)
    for layer, bits in zip(patterns(model, sample), expected):
        same &= (layer == np.array([b == "1" for b in bits])).all(axis=1)
    box = (xmax - xmin) * (ymax - ymin)
    share = float(info["area"]) / box
    assert abs(same.mean() - share) < 5 * np.sqrt(share * (1 - share) / len(sample)) + 1e-4
    assert severe_console_errors(driver) == []


def test_unit_strip_highlights_a_unit_and_shows_its_weights(driver, app_url: str) -> None:
    from selenium.webdriver.common.by import By

    open_playground(driver, app_url + "/?widths=5,3")
    wait_for(lambda: "2-5-3-2" in text(driver, "pg-model-info"), 30, message="the per-layer widths")
    thumbs = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".unit-thumb"), 30, message="the unit strip")
    assert len(thumbs) == 8  # 5 + 3 units
    assert driver.find_element(By.ID, "pg-widths").get_attribute("value") == "5,3"
    driver.find_element(By.CSS_SELECTOR, "img[title='layer 2, unit 3']").click()
    info = wait_for(lambda: attrs(driver, "#pg-unit-info [data-unit]"), 20, message="the unit's weights")
    assert info["unit"] == "1.2"
    config = PlaygroundConfig(widths="5,3")
    model = build(architecture(config, config_dataset(config)))
    expected = ", ".join(f"{w:+.3f}" for w in model[2].weight[2].tolist())
    assert expected in text(driver, "pg-unit-info") and f"{model[2].bias[2].item():+.3f}" in text(driver, "pg-unit-info")
    wait_for(lambda: driver.execute_script(
        "const v = window.splineviz.painter.of('pg-graph', 0).view.highlight; return v && v.layer === 1 && v.unit === 2"),
        10, message="the unit's line highlighted")
    shot(driver, "playground-unit")
    driver.find_element(By.CSS_SELECTOR, "img[title='layer 2, unit 3']").click()  # again: unselected
    wait_for(lambda: not attrs(driver, "#pg-unit-info [data-unit]"), 20, message="the unit unselected")
    assert severe_console_errors(driver) == []


def test_test_points_legend_classes_and_axes_follow_the_data(driver, app_url: str) -> None:
    from selenium.webdriver.common.by import By

    open_playground(driver, app_url + "/?dataset=gaussians&test=0.5&show=points,test,decision")
    n_test = len(config_dataset(PlaygroundConfig(dataset="gaussians", test=0.5)).x_test)
    wait_for(lambda: driver.execute_script(
        "const gd = document.querySelector('#pg-graph .js-plotly-plot');"
        "return gd && gd._fullData && gd._fullData.length ? gd._fullData[0]._length : 0") == n_test, 30,
        message="the test points")
    legend = wait_for(lambda: text(driver, "pg-legend"), 20, message="the legend")
    assert "predicted class 3" in legend and "predicted class 4" not in legend  # four Gaussians, four classes
    shot(driver, "playground-test-points")

    def x_range():
        return driver.execute_script("return document.querySelector('#pg-graph .js-plotly-plot').layout.xaxis.range")

    before = x_range()
    set_control(driver, "pg-dataset", "xshape")
    bounds = config_dataset(PlaygroundConfig(dataset="xshape")).bounds
    wait_for(lambda: np.allclose(x_range(), bounds[:2]), 30, message="the axes to refit")
    assert not np.allclose(before, bounds[:2])
    assert "dataset=xshape" in driver.current_url
    assert severe_console_errors(driver) == []


def test_replay_drives_the_slider_and_more_epochs_continue(driver, app_url: str) -> None:
    from selenium.webdriver.common.by import By

    open_playground(driver, app_url + "/?layers=1&width=4&epochs=6&batch=8&l2=0.001")
    click(driver, "pg-play")
    wait_for(lambda: text(driver, "pg-stat-epoch") == "6", 90, message="the target")
    click(driver, "pg-play")  # at the target: a message says how to go on
    assert "+100 epochs" in wait_for(lambda: text(driver, "pg-alert"), 10, message="the target message")

    driver.execute_script("""
        window.__seen = [];
        const handle = document.querySelector('#pg-epoch [role=slider]');
        window.__watch = setInterval(() => window.__seen.push(handle.getAttribute('aria-valuenow')), 10);""")
    click(driver, "pg-replay")
    wait_for(lambda: text(driver, "pg-replay") == "▶ Replay" and len(set(driver.execute_script(
        "return window.__seen"))) >= 4, 30, message="the replay to end")
    seen = [int(v) for v in driver.execute_script("clearInterval(window.__watch); return window.__seen")]
    assert len(set(seen)) >= 4 and seen[-1] == 6  # the slider moved with the replay and ended on the last frame
    # the curves' marker is drawn at the last epoch, the line moved on the page (not redrawn at every frame)
    wait_for(lambda: marker_x(driver, "current epoch", "pg-curves") == 6, 10, message="the marker on the last epoch")
    assert driver.execute_script("const gd = document.querySelector('#pg-curves .js-plotly-plot');"
                                 "return gd.layout.shapes.filter(s => s.name === 'current epoch').length") == 1

    layer_tooltip = driver.execute_script("""
        const h = document.querySelector('#pg-layer [role=slider]'); h.focus();
        h.dispatchEvent(new PointerEvent('pointerover', {bubbles: true}));
        h.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
        h.dispatchEvent(new MouseEvent('mouseenter', {bubbles: true}));
        return h.getAttribute('aria-valuenow');""")
    assert layer_tooltip == "0"
    tip = wait_for(lambda: driver.execute_script(
        "const t = document.querySelector('#pg-layer [class*=tooltip], [id^=pg-layer][id$=tooltip]');"
        "return t ? t.textContent : ''"), 10, message="the layer tooltip")
    assert tip.strip() == "1"  # counted from 1, like the marks

    click(driver, "pg-more")
    wait_for(lambda: driver.find_element(By.ID, "pg-epochs").get_attribute("value") == "106", 10,
             message="the target raised by 100")
    wait_for(lambda: epoch_shown(driver) > 6, 60, message="training to continue")
    click(driver, "pg-play")
    shot(driver, "playground-more-epochs")
    assert severe_console_errors(driver) == []


def test_every_chunk_is_drawn_as_it_arrives(driver, app_url: str) -> None:
    """Training arrives in chunks (background jobs); the newest frame of each must be drawn before the next
    arrives. Render once sat in a loop of callbacks (render -> shown frame -> settled view -> unit strip ->
    selected unit -> render), and Dash runs a requested callback in such a loop only while nothing else is
    pending: with the next chunk always in flight, frames were drawn only now and then (a 6 x 64 run showed
    epoch 0 for 14 s, then 20, then 48, while chunks ended at 4, 8, 13 and 18 s). The Pruning and Early-bird
    pages, which recompute at every change of the model, are not asked while they are hidden."""
    open_playground(driver, app_url + "/?dataset=spirals&layers=4&width=32&epochs=600")
    driver.execute_script("""
        window.__arrived = []; window.__drawn = []; window.__others = [];
        const fetched = window.fetch;
        window.fetch = function (url, opts) {
          const body = String((opts && opts.body) || "");
          if (/"(pr|eb)-/.test(body.slice(0, 2000))) window.__others.push(body.slice(0, 120));
          return fetched.apply(this, arguments);
        };
        const pg = window.splineviz.playground, control = pg.control;
        pg.control = function (v, cfg) {  // a chunk's frames reach the frames store in the control's result
          const out = control(v, cfg);
          if (out && out.frames && out.frames.length > v.frames.length) {
            window.__arrived.push(out.frames[out.frames.length - 1].stats.epoch);
          }
          return out;
        };
        const stat = document.getElementById('pg-stat-epoch');
        new MutationObserver(() => window.__drawn.push(stat.textContent))
          .observe(stat, {childList: true, subtree: true, characterData: true});""")
    click(driver, "pg-play")
    wait_for(lambda: len(driver.execute_script("return window.__arrived")) >= 6, 180, message="six chunks")
    click(driver, "pg-play")  # pause
    arrived, drawn, others = driver.execute_script("return [window.__arrived, window.__drawn, window.__others]")
    missed = [epoch for epoch in arrived[:-1] if str(epoch) not in drawn]  # the last may still be on its way
    assert not missed, f"chunks ending at epochs {missed} were never drawn (drawn: {drawn}, arrived: {arrived})"
    assert others == []


def test_uploads_show_the_model_warn_before_discarding_and_reload(driver, app_url: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    open_playground(driver, app_url + "/")
    model = mlp(2, (6,), 2, seed=3)
    path = tmp_path / "net.pt"
    torch.save(model.state_dict(), path)
    driver.find_element(By.CSS_SELECTOR, "#pg-activation input[value=leaky_relu]").click()
    wait_for(lambda: "act=leaky_relu" in driver.current_url and painted(driver), 30, message="a leaky session")
    upload(driver, "pg-upload", path)
    wait_for(lambda: "from net.pt" in text(driver, "pg-model-info"), 60, message="the uploaded model")
    assert "2-6-2 Leaky ReLU" in text(driver, "pg-model-info")  # the activation chosen for a state dict
    assert driver.find_element(By.ID, "pg-widths").get_attribute("value") == "6"
    shot(driver, "playground-upload")

    click(driver, "pg-step")
    wait_for(lambda: text(driver, "pg-stat-epoch") not in ("", "0"), 60, message="a step of training")
    upload(driver, "pg-upload", path)  # the same file again: loaded again (back at epoch 0)
    wait_for(lambda: text(driver, "pg-stat-epoch") == "0", 60, message="the same file loaded twice")

    set_control(driver, "pg-dataset", "circles")
    wait_for(lambda: "discards the uploaded model net.pt" in text(driver, "pg-discard-text") and
             driver.find_element(By.ID, "pg-discard-row").is_displayed(), 20, message="the warning")
    shot(driver, "playground-discard-warning")
    click(driver, "pg-keep")
    wait_for(lambda: "Two moons" in driver.find_element(By.ID, "pg-dataset").text, 20, message="the control restored")
    wait_for(lambda: not driver.find_element(By.ID, "pg-discard-row").is_displayed(), 10, message="the row hidden")
    assert "from net.pt" in text(driver, "pg-model-info")
    shot(driver, "playground-kept")

    set_control(driver, "pg-dataset", "circles")
    wait_for(lambda: driver.find_element(By.ID, "pg-discard-row").is_displayed(), 20, message="the warning again")
    click(driver, "pg-discard")
    wait_for(lambda: "from" not in text(driver, "pg-model-info") and "2-6-2" in text(driver, "pg-model-info"), 30,
             message="a fresh run on circles")
    assert severe_console_errors(driver) == []


def downloads(driver, folder: Path) -> Path:
    """Let the headless browser save downloads into ``folder``."""
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)})
    return folder


def downloaded(folder: Path, suffix: str) -> Path:
    return wait_for(lambda: next((p for p in folder.glob(f"*{suffix}") if p.stat().st_size), None), 30,
                    message=f"a {suffix} download")


def test_links_sessions_and_model_files_reproduce_the_view(driver, app_url: str, tmp_path: Path) -> None:
    from urllib.parse import parse_qs, urlparse

    from selenium.webdriver.common.by import By

    from splineviz.bundle import decode_state, load_bundle
    from splineviz.nets import load_model

    folder = downloads(driver, tmp_path)
    open_playground(driver, app_url + "/?layers=1&width=4&epochs=3&shade=code")
    click(driver, "pg-play")
    wait_for(lambda: text(driver, "pg-stat-epoch") == "3", 60, message="3 epochs")
    link = wait_for(lambda: "w=3." in driver.current_url and driver.current_url, 30, message="weights in the URL")
    regions = text(driver, "pg-stat-regions")
    shot(driver, "playground-linked-view")

    # the model file of the shown frame computes what the link's weights compute
    click(driver, "pg-model-info")  # (scrolls the left column into view)
    driver.find_element(By.CSS_SELECTOR, "[id*='\"format\":\"onnx\"']").click()
    onnx = downloaded(folder, ".onnx")
    state = decode_state(parse_qs(urlparse(link).query)["w"][0].split(".", 1)[1])
    from_link = mlp(2, (4,), 2)
    from_link.load_state_dict(state)
    x = torch.randn(32, 2)
    with torch.no_grad():
        assert torch.allclose(load_model(onnx.read_bytes())(x), from_link(x), atol=1e-5)

    # a marker in another page's store travels with the session (the page is mounted once visited)
    assert driver.execute_script("return document.getElementById('pr-summary')") is None  # not visited yet
    driver.find_element(By.ID, "nav-pruning").click()
    wait_for(lambda: "(epoch 3)" in text(driver, "pr-summary"), 60, message="the Pruning page's preview")
    driver.find_element(By.ID, "nav-playground").click()
    driver.execute_script("window.dash_clientside.set_props('pr-panels', {data: {figure: {data: [], layout: "
                          "{title: {text: 'marker-pruning-state'}}}}})")
    click(driver, "pg-save-session")
    session = downloaded(folder, ".zip")

    # the link opens the same frame in a fresh page
    driver.get(link)
    wait_for(lambda: text(driver, "pg-stat-epoch") == "3" and painted(driver), 60, message="the linked frame")
    assert text(driver, "pg-stat-regions") == regions
    assert driver.find_element(By.CSS_SELECTOR, "#pg-shade input[value=code]").is_selected()

    # the session file opens every epoch, the view and the other page's state in a fresh page
    open_playground(driver, app_url + "/")
    upload(driver, "pg-open-session", session)
    wait_for(lambda: text(driver, "pg-stat-epoch") == "3", 60, message="the opened session")
    assert driver.execute_script("return document.querySelector('#pg-epoch [role=slider]').getAttribute('aria-valuemax')"
                                 ) == "3"  # epochs 0..3, each a frame
    assert text(driver, "pg-stat-regions") == regions and "layers=1" in driver.current_url
    # saved again before the Pruning page is visited (not mounted yet): its stores travel on from the opened file
    session.rename(session.with_suffix(".first"))
    click(driver, "pg-save-session")
    again = load_bundle(downloaded(folder, ".zip").read_bytes())
    assert "marker-pruning-state" in json.dumps(again.config.get("pages"))
    # the Pruning page's store receives the marker when the page mounts (its preview of the same model, recomputed
    # from its copy of the model, replaces it at once: the store's values are recorded as the page holds them)
    driver.execute_script(
        "window.__held = []; window.store.subscribe(() => { const state = window.store.getState(); "
        "const path = state.paths.strs['pr-panels']; if (!path) return; let node = state.layout; "
        "for (const key of path) node = node[key]; const held = JSON.stringify(node.props.data || null).slice(0, 200); "
        "if (window.__held[window.__held.length - 1] !== held) window.__held.push(held); });")
    driver.find_element(By.ID, "nav-pruning").click()
    wait_for(lambda: "marker-pruning-state" in "".join(driver.execute_script("return window.__held")), 30,
             message="the pruning page's state restored")
    assert severe_console_errors(driver) == []


def test_own_data_from_a_csv_and_from_clicks(driver, app_url: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    open_playground(driver, app_url + "/?layers=1&width=6")
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y,label\n0,0,a\n1,oops,b\n")
    upload(driver, "pg-own-csv", bad)
    assert "row" in wait_for(lambda: text(driver, "pg-alert"), 20, message="the CSV's refusal")

    rng = np.random.default_rng(1)
    rows = [(x, y, int(x > 3)) for x, y in zip(rng.uniform(0, 6, 60), rng.uniform(-1, 1, 60))]
    good = tmp_path / "mine.csv"
    good.write_text("x,y,label\n" + "".join(f"{x},{y},{c}\n" for x, y, c in rows))
    upload(driver, "pg-own-csv", good)
    wait_for(lambda: "Own data" in driver.find_element(By.ID, "pg-dataset").text, 20, message="own data chosen")
    x_range = wait_for(lambda: driver.execute_script(
        "const gd = document.querySelector('#pg-graph .js-plotly-plot'); const r = gd.layout.xaxis.range;"
        "return r[1] > 6 ? r : null"), 60, message="axes over the CSV's points")
    assert x_range[0] <= -3  # the default domain is kept, widened to the points
    legend = wait_for(lambda: text(driver, "pg-legend"), 20, message="the legend")
    assert "predicted class 1" in legend and "predicted class 2" not in legend
    shot(driver, "playground-own-csv")

    driver.find_element(By.CSS_SELECTOR, f"#{'pg-click-class'} input[value='2']").click()
    area = driver.find_element(By.CSS_SELECTOR, "#pg-graph .nsewdrag")
    for dx in (-60, -40, -20):
        ActionChains(driver).move_to_element(area).move_by_offset(dx, 60).click().perform()
    wait_for(lambda: "predicted class 2" in text(driver, "pg-legend"), 60, message="a third class from clicks")
    shot(driver, "playground-own-clicks")
    assert severe_console_errors(driver) == []
