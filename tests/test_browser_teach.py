"""Headless Chromium: the teaching parts of the app (issue 12 items 5-8).

A 400 px window fits every page (the menu folds, the plot comes first); a page can be used with the keyboard
alone (every button and slider is a Tab stop with a visible focus; dropdowns, thumbnails and the lesson panel
answer to the keys); each preset opens its page in its state and starts it; the Experiments page draws its
figures interactively, offers downloads and says when a run is cancelled or fails; the MNIST pickers agree.
Screenshots go to out/screenshots/ for a human look.
"""
from __future__ import annotations

import csv
import io
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest

from harness import HAS_CHROMIUM, epoch_shown, severe_console_errors, shot, wait_for
from harness import element_text as text

pytestmark = pytest.mark.browser
if not HAS_CHROMIUM:
    pytest.skip("needs Chromium and chromedriver", allow_module_level=True)

PAGES = {"playground": "/", "pruning": "/pruning", "earlybird": "/earlybird", "regression": "/regression",
         "mnist": "/mnist", "experiments": "/experiments", "lessons": "/lessons"}


def shown(driver, name: str) -> bool:
    return driver.execute_script(
        f"const p = document.getElementById('page-{name}'); return !!p && p.style.display === 'block'")


def open_page(driver, url: str, name: str) -> None:
    driver.get(url)
    wait_for(lambda: shown(driver, name), 30, message=f"the {name} page")


def url_values(driver) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(driver.current_url).query))


def focused(driver) -> dict:
    """What has the keyboard focus: its id (or its nearest id'd ancestor's), tag, classes, outline."""
    return driver.execute_script("""
        const e = document.activeElement;
        const owner = e.closest('[id]');
        const style = getComputedStyle(e);
        const within = e.closest('.dash-dropdown-wrapper, .dash-input-container');  // rings drawn around them
        const ring = s => s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
        return {id: e.id, owner: owner ? owner.id : '', tag: e.tagName, cls: String(e.className),
                outline: ring(style) || (!!within && ring(getComputedStyle(within)))};""")


def tab(driver, times: int = 1, back: bool = False) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    chain = ActionChains(driver)
    for _ in range(times):
        if back:
            chain.key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT)
        else:
            chain.send_keys(Keys.TAB)
    chain.perform()


def press(driver, *keys: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    chain = ActionChains(driver)
    for key in keys:
        chain.send_keys(key)
    chain.perform()


def tab_to(driver, test, limit: int = 120) -> dict:
    """Press Tab until ``test(focused)`` holds; fails after ``limit`` presses."""
    for _ in range(limit):
        tab(driver)
        now = focused(driver)
        if test(now):
            return now
    raise AssertionError("never reached with Tab")


def choose_with_keys(driver, dropdown_id: str, *keys: str) -> None:
    """Tab to a dropdown, open it with Enter and, once its list has the focus, press ``keys`` at once (as fast as
    a keyboard sends them)."""
    from selenium.webdriver.common.keys import Keys

    tab_to(driver, lambda f: driver.execute_script(
        "const box = document.activeElement.closest('.dash-dropdown-wrapper');"
        f"return !!box && !!box.querySelector('#{dropdown_id}')"))
    press(driver, Keys.ENTER)
    wait_for(lambda: driver.execute_script("return document.activeElement.type === 'radio'"), 10,
             message=f"the open {dropdown_id} list")
    press(driver, *keys)


# -- 400 px ---------------------------------------------------------------------------------------------------
def test_a_400px_window_fits_every_page(driver, app_url: str) -> None:
    from selenium.webdriver.common.by import By

    driver.set_window_size(400, 900)
    for name, path in PAGES.items():
        open_page(driver, app_url + path, name)
        wait_for(lambda: driver.execute_script(f"""
            const page = document.getElementById('page-{name}');
            return page.querySelectorAll('.js-plotly-plot').length === page.querySelectorAll('.dash-graph').length;
            """), 60, message=f"the {name} figures")
        if name == "playground":
            wait_for(lambda: text(driver, "pg-stat-epoch") == "0", 60, message="the first partition")
        width = driver.execute_script("return document.documentElement.clientWidth")
        overflow = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= 400 and overflow <= width, (name, width, overflow)
        # the navigation is folded into the menu button
        assert not driver.find_element(By.ID, "nav").is_displayed()
        assert driver.find_element(By.ID, "nav-toggle").is_displayed()
        # columns stack and the plot comes first: the page's first graph starts above its first control
        order = driver.execute_script(f"""
            const page = document.getElementById('page-{name}');
            const graph = page.querySelector('.dash-graph'), control = page.querySelector('.controls');
            return graph && control ? [graph.getBoundingClientRect().top, control.getBoundingClientRect().top,
                                       graph.getBoundingClientRect().right] : null;""")
        if order:
            assert order[0] < order[1] and order[2] <= width, (name, order)
        shot(driver, f"narrow-400-{name}")
    assert severe_console_errors(driver) == []


def _panels(driver, graph: str) -> list[dict]:
    """Where each painted panel of a graph lies on the page (left, top, w, h in pixels), once all are painted."""
    return driver.execute_script(f"""
        const ps = window.splineviz.painter.all('{graph}').filter(p => p.frame);
        if (ps.some(p => p.busy || p.pending || !p.painted)) return [];
        return ps.map(p => {{ const b = p.box(), r = p.gd.getBoundingClientRect();  // b: offsets in the graph
                              return b && {{left: r.left + b.left - p.gd.offsetLeft,
                                           top: r.top + b.top - p.gd.offsetTop, w: b.w, h: b.h}}; }});""")


def _titles_fit(driver, graph: str) -> bool:
    """Every panel title of the graph lies inside the window (not cut off at its right edge)."""
    return driver.execute_script(f"""
        const texts = [...document.querySelectorAll('#{graph} .annotation-text')];
        return texts.length > 0 && texts.every(t => t.getBoundingClientRect().right <= window.innerWidth);""")


def test_side_by_side_panels_stack_at_400px_and_stand_side_by_side_on_a_desktop(driver, app_url: str) -> None:
    """Pruning's before / after panels and its two runs "beside" each other: one above the other (plot first,
    each as wide as the window allows, titles inside it, no sideways scrolling) at 400 px; in a row on a desktop."""
    from selenium.webdriver.common.by import By

    driver.set_window_size(400, 900)
    open_page(driver, app_url + "/pruning?layers=1&width=4&compare=method:weight&schedule=oneshot&pr_epochs=4"
                                "&prune_at=2", "pruning")
    for graph in ("pr-graph", "pr-anim"):
        if graph == "pr-anim":  # the Playground's model is there (before / after shows it): run the two schedules
            driver.find_element(By.ID, "pr-run").click()
        panels = wait_for(lambda: len(_panels(driver, graph)) == 2 and _panels(driver, graph), 120,
                          message=f"{graph}'s two panels painted")
        first, second = panels
        width = driver.execute_script("return document.documentElement.clientWidth")
        box = driver.execute_script(f"return document.getElementById('{graph}').clientWidth")
        assert second["top"] >= first["top"] + first["h"], (graph, panels)  # stacked, the first on top
        # each nearly as wide as the graph's plot area (its box less plotly's 50 + 10 px margins; side by side,
        # each had less than half), inside the window
        assert all(p["w"] >= 0.9 * (box - 60) and p["left"] >= 0 and p["left"] + p["w"] <= width for p in panels), \
            (panels, box)
        assert _titles_fit(driver, graph)
        assert driver.execute_script("return document.documentElement.scrollWidth") <= width
    order = driver.execute_script("""
        const page = document.getElementById('page-pruning');
        return [page.querySelector('#pr-anim').getBoundingClientRect().top,
                page.querySelector('.controls').getBoundingClientRect().top];""")
    assert order[0] < order[1], order  # the plots come first
    driver.execute_script("document.getElementById('pr-graph').scrollIntoView()")
    shot(driver, "narrow-400-pruning-side-by-side")

    driver.set_window_size(1600, 1000)  # wide again: the panels stand in a row
    def in_a_row(graph: str) -> list[dict]:
        panels = _panels(driver, graph)
        return panels if len(panels) == 2 and abs(panels[0]["top"] - panels[1]["top"]) <= 1 else []

    for graph in ("pr-graph", "pr-anim"):
        first, second = wait_for(lambda: in_a_row(graph), 60, message=f"{graph}'s panels side by side")
        assert second["left"] >= first["left"] + first["w"], (graph, first, second)
    driver.execute_script("document.getElementById('pr-anim').scrollIntoView()")
    shot(driver, "desktop-pruning-side-by-side")
    assert severe_console_errors(driver) == []


def test_the_menu_opens_and_navigates_with_the_keyboard(driver, app_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.set_window_size(400, 900)
    open_page(driver, app_url + "/mnist", "mnist")
    tab_to(driver, lambda f: f["id"] == "nav-toggle")
    assert focused(driver)["outline"], "the focused menu button shows its focus"
    press(driver, Keys.ENTER)
    wait_for(lambda: driver.find_element(By.ID, "nav").is_displayed(), 10, message="the open menu")
    assert driver.find_element(By.ID, "nav-toggle").get_attribute("aria-expanded") == "true"
    shot(driver, "narrow-400-menu-open")
    tab_to(driver, lambda f: f["id"] == "nav-lessons", limit=10)
    press(driver, Keys.ENTER)
    wait_for(lambda: shown(driver, "lessons"), 10, message="the lessons page")
    wait_for(lambda: not driver.find_element(By.ID, "nav").is_displayed(), 10, message="the menu to close")


# -- keyboard -------------------------------------------------------------------------------------------------
def _every_control_is_a_visible_tab_stop(driver, page: str, limit: int = 150) -> None:
    """Every enabled button, input, slider, link, summary and other tab stop (drop zones, unit thumbnails) shown
    on the page is reached by Tab, each with a visible focus ring."""
    wanted = set(driver.execute_script(f"""
        const page = document.getElementById('page-{page}');
        const els = [...page.querySelectorAll('button, input, [role=slider], summary, a, [tabindex="0"]')]
            .filter(e => !e.disabled && e.offsetParent !== null && e.tabIndex >= 0
                         && (e.tagName === 'SUMMARY' || !e.closest('details:not([open])')));
        els.forEach((e, i) => e.setAttribute('data-stop', i));
        return els.map(e => e.getAttribute('data-stop'));"""))
    radios = driver.execute_script(f"return [...document.querySelectorAll('#page-{page} input[type=radio]')]"
                                   ".filter(r => !r.checked).map(r => r.getAttribute('data-stop'))")
    wanted -= set(radios)  # a radio group is one Tab stop: its checked option; arrows move within it
    reached, unringed = set(), []
    driver.find_element("tag name", "body").click()
    for _ in range(limit):
        tab(driver)
        stop = driver.execute_script("""  // a dropdown's focus target hands the focus to its button
            const e = document.activeElement, box = e.closest('.dash-dropdown-wrapper');
            return (box ? box.querySelector('.dash-dropdown-focus-target') : e).getAttribute('data-stop');""")
        if stop is None:
            continue
        reached.add(stop)
        if not focused(driver)["outline"]:
            unringed.append(focused(driver))
        if wanted <= reached:
            break
    missing = driver.execute_script("return arguments[0].map(i => document.querySelector(`[data-stop='${i}']`)"
                                    ".outerHTML.slice(0, 160))", sorted(wanted - reached))
    assert wanted <= reached, f"not reached with Tab: {missing}"
    assert unringed == [], unringed


@pytest.mark.parametrize("page", ["playground", "pruning", "earlybird", "regression", "experiments", "lessons"])
def test_every_control_of_every_page_is_a_visible_tab_stop(driver, app_url: str, page: str) -> None:
    from selenium.webdriver.common.keys import Keys

    open_page(driver, f"{app_url}/{page}", page)
    if page == "playground":  # its unit strip (48 thumbnails) comes once the first frame settles
        wait_for(lambda: text(driver, "pg-stat-epoch") == "0", 60, message="the first partition")
        wait_for(lambda: driver.execute_script("return document.querySelectorAll('#pg-units .unit-thumb').length")
                 == 48, 60, message="the unit strip")
    if page == "pruning":  # the schedule shows its own fields only (gradual: not "prune at", not the threshold)
        wait_for(lambda: driver.execute_script("return document.getElementById('pr-at-row').style.display")
                 == "none", 30, message="the gradual schedule's fields")
    _every_control_is_a_visible_tab_stop(driver, page, limit=300)
    if page == "playground":  # a unit thumbnail answers to Enter; a dropdown of strings to quick arrows
        tab_to(driver, lambda f: f["cls"] == "unit-thumb" and "layer 2, unit 3" == driver.execute_script(
            "return document.activeElement.title"), limit=300)
        press(driver, Keys.ENTER)
        wait_for(lambda: "layer 2, unit 3" in text(driver, "pg-unit-info").replace("Layer", "layer"), 30,
                 message="unit 3 of layer 2 chosen with Enter")
        driver.get(app_url + "/playground")
        wait_for(lambda: shown(driver, "playground"), 30)
        choose_with_keys(driver, "pg-dataset", Keys.ARROW_DOWN, Keys.ARROW_DOWN, Keys.ENTER)
        wait_for(lambda: url_values(driver).get("dataset") == "xor", 20, message="XOR chosen with the keyboard")
    assert severe_console_errors(driver) == []


def test_every_mnist_control_is_a_visible_tab_stop_and_works_from_the_keyboard(driver, app_url: str) -> None:
    from selenium.webdriver.common.keys import Keys

    from splineviz.web.jobs.mnist import mnist_data

    labels = mnist_data().y_test
    open_page(driver, app_url + "/mnist", "mnist")
    wait_for(lambda: driver.execute_script("return document.querySelectorAll('#mn-thumbs-b button').length") == 10,
             30, message="thumbnails")
    _every_control_is_a_visible_tab_stop(driver, "mnist")

    # the lesson panel opens with Enter
    driver.get(app_url + "/mnist")
    wait_for(lambda: shown(driver, "mnist"), 30)
    tab_to(driver, lambda f: f["tag"] == "SUMMARY")
    press(driver, Keys.ENTER)
    assert driver.execute_script("return document.getElementById('lesson-mnist').open")
    # the digit dropdown: open it with the keyboard, move up three digits (9 -> 6), choose
    choose_with_keys(driver, "mn-digit-b", Keys.ARROW_UP, Keys.ARROW_UP, Keys.ARROW_UP, Keys.ENTER)
    first_six = int((labels == 6).nonzero()[0][0])
    wait_for(lambda: url_values(driver).get("b") == str(first_six), 20, message="image B: the first 6")
    wait_for(lambda: "label 6" in text(driver, "mn-caption-b"), 20, message="image B's caption")
    # a thumbnail, chosen with Tab and Space
    wait_for(lambda: driver.execute_script(
        f"return document.querySelector('#mn-thumbs-b button.selected')?.title === 'test image {first_six}'"), 20,
        message="the new thumbnails")
    tab_to(driver, lambda f: driver.execute_script(
        "return document.activeElement.closest('#mn-thumbs-b') !== null && "
        "document.activeElement.parentNode.children[3] === document.activeElement"), limit=60)
    fourth = int((labels == 6).nonzero()[0][3])
    press(driver, " ")
    wait_for(lambda: url_values(driver).get("b") == str(fourth), 20, message="the fourth 6 chosen with Space")
    # the extent slider moves with the arrows
    tab_to(driver, lambda f: driver.execute_script(
        "return document.activeElement.getAttribute('role') === 'slider' && "
        "document.activeElement.closest('#mn-extent') !== null"), limit=60)
    press(driver, Keys.ARROW_LEFT)
    wait_for(lambda: url_values(driver).get("extent") == "0.9", 10, message="the extent slider to move")
    shot(driver, "keyboard-mnist")
    assert severe_console_errors(driver) == []


# -- each page's address ----------------------------------------------------------------------------------------
def _keys(driver) -> set[str]:
    return set(url_values(driver))


def test_each_page_address_holds_its_own_keys_and_a_copied_link_reopens_the_page(driver, app_url: str) -> None:
    """A link may set any page's controls; the address then shows the shown page's keys only (the Playground's
    view, layer= among them, on no other page), and opening that address afresh gives the same page."""
    from selenium.webdriver.common.by import By

    from splineviz.web.jobs.mnist import mnist_data

    # one link sets controls of five pages; the Playground trains its small net to epoch 3
    open_page(driver, app_url + "/playground?layers=1&width=4&epochs=3&shade=code&method=weight&sparsity=80"
                                "&eb_epochs=30&b=10&extent=0.5&rg_epochs=50", "playground")
    wait_for(lambda: text(driver, "pg-stat-epoch") == "0", 60, message="the first partition")
    driver.find_element(By.ID, "pg-play").click()
    wait_for(lambda: url_values(driver).get("w", "").startswith("3."), 90, message="epoch 3's weights in the address")
    assert _keys(driver) == {"layers", "width", "epochs", "shade", "layer", "w"}
    # the keys each page's address holds, by hand: the Playground's run on the pages that train it, its shown
    # weights where they are pruned, each page's own settings, and nothing of the Playground's view elsewhere
    expected = {"mnist": {"b", "extent"}, "pruning": {"layers", "width", "epochs", "w", "method", "sparsity"},
                "earlybird": {"layers", "width", "epochs", "eb_epochs"}, "regression": {"rg_epochs"},
                "lessons": set(), "playground": {"layers", "width", "epochs", "shade", "layer", "w"}}
    links = {}
    for name, keys in expected.items():
        driver.find_element(By.ID, f"nav-{name}").click()
        wait_for(lambda: shown(driver, name) and _keys(driver) == keys, 20,
                 message=f"{name}: only {sorted(keys)} in {driver.current_url}")
        links[name] = driver.current_url
    assert "layer=" not in "".join(links[name] for name in expected if name != "playground")

    # what each page shows, to compare with the same address opened afresh
    driver.get(links["pruning"])
    summary = wait_for(lambda: "(epoch 3)" in text(driver, "pr-summary") and text(driver, "pr-summary"), 60,
                       message="the Playground's epoch-3 model pruned on the Pruning page")
    label = int(mnist_data().y_test[10])
    views = {"pruning": summary, "mnist": f"test image 10, label {label}"}
    for name, link in links.items():
        driver.get("about:blank")
        open_page(driver, link, name)
        wait_for(lambda: driver.current_url == link, 20, message=f"{name}: the address as it was linked")
        if name == "pruning":  # the link's weights (w=3....) are those the Pruning page prunes
            wait_for(lambda: text(driver, "pr-summary") == views["pruning"], 60, message="the same pruning summary")
            assert driver.find_element(By.CSS_SELECTOR, "#pr-method input[value=weight]").is_selected()
        elif name == "mnist":
            wait_for(lambda: text(driver, "mn-caption-b") == views["mnist"], 20, message="image B")
            assert driver.find_element(By.CSS_SELECTOR, "#mn-extent [role=slider]").get_attribute(
                "aria-valuenow") == "0.5"
        elif name == "earlybird":
            assert driver.find_element(By.ID, "eb-epochs").get_attribute("value") == "30"
        elif name == "regression":
            assert driver.find_element(By.ID, "rg-epochs").get_attribute("value") == "50"
        elif name == "playground":  # the linked frame: epoch 3 (its weights are in the link)
            wait_for(lambda: text(driver, "pg-stat-epoch") == "3", 60, message="the Playground at epoch 3")
    shot(driver, "links-per-page")
    assert severe_console_errors(driver) == []


# -- presets --------------------------------------------------------------------------------------------------
def _expected_query(preset) -> dict:
    """The address the shell writes back after reading a preset's link: the values of the page's own keys that
    differ from defaults (the X-shape preset also sets the Pruning page's, which its address then holds)."""
    from splineviz.web.params import page_keys
    from splineviz.web.shell import encode_search

    own = {k: v for k, v in preset.values.items() if k in page_keys(preset.path)}
    return _read(dict(parse_qsl(encode_search(own).lstrip("?"))))


def _read(query: dict[str, str]) -> dict:
    """Query values as the app reads them (a slider may write 0 where the link said 0.0)."""
    from splineviz.web.params import URL_PARAMS

    return {key: URL_PARAMS[key].clean(value) for key, value in query.items()}


def _settings(query: dict) -> dict:
    """An address's values without the Playground's view keys, which a link carries besides the settings."""
    from splineviz.web.params import Playground

    view = {Playground.LAYER.key, Playground.SHADE.key, Playground.SHOW.key, Playground.LINK.key}
    return {k: v for k, v in query.items() if k not in view}


def _checked(driver, radio_id: str) -> str:
    return driver.execute_script(
        f"const r = document.querySelector('#{radio_id} input:checked'); return r ? r.value : ''")


@pytest.mark.timeout(900)  # six presets, each trains a while
def test_each_preset_opens_its_page_in_its_state_and_starts_it(driver, app_url: str) -> None:
    from selenium.webdriver.common.by import By

    from splineviz.web.lessons import PRESETS
    from splineviz.web.params import DATASETS

    # the gallery lists every preset as a link
    open_page(driver, app_url + "/lessons", "lessons")
    links = {p: driver.find_element(By.ID, f"preset-{p}").get_attribute("href") for p in PRESETS}
    assert all(links[name].endswith(p.url) for name, p in PRESETS.items())
    shot(driver, "lessons-gallery")

    for name, preset in PRESETS.items():
        page = preset.path.strip("/")
        open_page(driver, links[name], page)
        expected = _expected_query(preset)
        # the controls took the link's values (the shell rewrites the address from them), and run=1 is spent; the
        # Playground may add its view (the layer shown, shading, weights once a frame settles), nothing else
        wait_for(lambda: _settings(_read(url_values(driver))) == expected, 30,
                 message=f"{name}: the address {expected}")
        if page == "playground":
            assert driver.find_element(By.ID, "pg-dataset").text == DATASETS[preset.values["dataset"]]
            assert _checked(driver, "pg-activation") == preset.values["act"]
            wait_for(lambda: epoch_shown(driver) > 0, 120, message=f"{name}: training to start")
            layers = preset.values["layers"]
            legend = text(driver, "pg-legend")
            assert f"layer {layers} boundaries" in legend and f"layer {layers + 1} " not in legend
            if "sparsity" in preset.values:  # set up for the Pruning page (mounted on its first visit): its link
                link = driver.find_element(By.ID, "nav-pruning").get_attribute("href")  # holds it meanwhile
                assert f"sparsity={preset.values['sparsity']}" in link, link
        elif page == "mnist":
            assert _checked(driver, "mn-arch") == preset.values["arch"]
            assert "label 6" in text(driver, "mn-caption-a") and "label 9" in text(driver, "mn-caption-b")
            wait_for(lambda: driver.find_element(By.ID, "mn-cancel").is_enabled(), 60,
                     message="the classifier's training to start")
            driver.find_element(By.ID, "mn-cancel").click()
            wait_for(lambda: "cancelled" in text(driver, "mn-alert"), 30, message="the cancel message")
        elif page == "earlybird":
            assert driver.find_element(By.ID, "eb-epochs").get_attribute("value") == str(preset.values["eb_epochs"])
            wait_for(lambda: driver.find_element(By.ID, "eb-cancel").is_enabled()
                     or "Ticket at epoch" in text(driver, "eb-summary"), 60, message="the early-bird run to start")
        elif page == "regression":
            assert driver.find_element(By.ID, "rg-widths").get_attribute("value") == preset.values["rg_widths"]
            # the run started with the preset's net: its first epochs are drawn, titled 1-8-8-1
            arch = "-".join(["1", *preset.values["rg_widths"].split(","), "1"])
            wait_for(lambda: arch + " net" in driver.execute_script(
                "const gd = document.querySelector('#rg-graph .js-plotly-plot');"
                "return gd && gd.layout && gd.layout.title ? gd.layout.title.text : ''"), 120,
                message="the regression run's first epoch")
            driver.find_element(By.ID, "rg-cancel").click()
        shot(driver, f"preset-{name}")
        assert severe_console_errors(driver) == [], name


# -- experiments ----------------------------------------------------------------------------------------------
def test_experiments_say_when_a_run_fails_or_is_cancelled(driver, app_url: str) -> None:
    from selenium.webdriver.common.by import By

    open_page(driver, app_url + "/experiments?experiment=cifar_eb", "experiments")
    wait_for(lambda: "CIFAR" in text(driver, "ex-description"), 30, message="the cifar_eb description")
    driver.find_element(By.ID, "ex-run").click()
    message = wait_for(lambda: text(driver, "ex-alert"), 120, message="the failure message")
    assert message.startswith("The experiment failed: ") and "CIFAR-10" in message
    assert driver.find_element(By.ID, "ex-alert").is_displayed()
    assert driver.find_element(By.ID, "ex-run").is_enabled()
    shot(driver, "experiments-failed")

    open_page(driver, app_url + "/experiments?experiment=xshape&quick=full", "experiments")
    wait_for(lambda: "X-shape" in text(driver, "ex-description"), 30, message="the xshape description")
    driver.find_element(By.ID, "ex-run").click()
    wait_for(lambda: driver.find_element(By.ID, "ex-cancel").is_enabled() and text(driver, "ex-progress-label"), 60,
             message="the full run to report progress")
    driver.find_element(By.ID, "ex-cancel").click()
    message = wait_for(lambda: text(driver, "ex-alert"), 30, message="the cancel message")
    assert message == "The experiment was cancelled."
    assert "alert-info" in driver.find_element(By.ID, "ex-alert").get_attribute("class")
    wait_for(lambda: driver.find_element(By.ID, "ex-run").is_enabled(), 10, message="Run to be enabled again")
    shot(driver, "experiments-cancelled")
    assert severe_console_errors(driver) == []


def test_experiment_figures_are_interactive_and_tables_download(driver, app_url: str) -> None:
    from selenium.webdriver.common.by import By

    open_page(driver, app_url + "/experiments?experiment=kmeans", "experiments")
    driver.find_element(By.ID, "ex-run").click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#ex-output .result-graph .js-plotly-plot"), 180,
             message="the experiment's figures")
    graphs = driver.execute_script("""
        return [...document.querySelectorAll('#ex-output .result-graph .js-plotly-plot')]
            .map(gd => ({traces: gd.data.length, drag: !!gd.querySelector('.nsewdrag'),
                         modebar: !!gd.querySelector('.modebar')}));""")
    assert len(graphs) == 2 and all(g["traces"] > 0 and g["drag"] and g["modebar"] for g in graphs)
    assert not driver.find_elements(By.CSS_SELECTOR, "#ex-output img")  # no static pictures any more
    links = driver.execute_script("""
        return [...document.querySelectorAll('#ex-output a.download')]
            .map(a => ({name: a.getAttribute('download'), href: a.getAttribute('href')}));""")
    names = {link["name"] for link in links}
    assert {"kmeans.csv", "kmeans.md", "kmeans_runs.csv", "kmeans_inertia.png", "kmeans_data.png"} <= names
    by_name = {link["name"]: link["href"] for link in links}
    # the CSV download and the Markdown download hold the same table
    rows = list(csv.reader(io.StringIO(unquote(by_name["kmeans.csv"].split(",", 1)[1]))))
    markdown = unquote(by_name["kmeans.md"].split(",", 1)[1]).strip().splitlines()
    header = [cell.strip() for cell in markdown[0].strip("|").split("|")]
    assert rows[0] == header and len(rows) - 1 == len(markdown) - 2
    assert by_name["kmeans_data.png"].startswith("data:image/png;base64,iVBOR")  # a PNG's signature
    shot(driver, "experiments-interactive")
    assert severe_console_errors(driver) == []


# -- MNIST pickers --------------------------------------------------------------------------------------------
def _slice_layout(driver) -> dict:
    return driver.execute_script("""
        const gd = document.querySelector('#mn-graph .js-plotly-plot');
        if (!gd || !gd.layout) return {};
        return {annotations: (gd.layout.annotations || []).map(a => a.text),
                shapes: (gd.layout.shapes || []).map(s => s.name), types: gd.data.map(t => t.type)};""")


def test_mnist_pickers_agree_and_the_slice_marks_a_and_b(driver, app_url: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from splineviz.web.jobs.mnist import mnist_data

    labels = mnist_data().y_test
    # the paper's pair by default: the first 6 and the first 9
    open_page(driver, app_url + "/mnist?mn_epochs=1", "mnist")
    wait_for(lambda: text(driver, "mn-caption-a") and text(driver, "mn-caption-b"), 30, message="the previews")
    first = {d: int((labels == d).nonzero()[0][0]) for d in range(10)}
    assert text(driver, "mn-caption-a") == f"test image {first[6]}, label 6"
    assert text(driver, "mn-caption-b") == f"test image {first[9]}, label 9"
    wait_for(lambda: text(driver, "mn-digit-a").strip() == "6", 20, message="digit 6 in A's dropdown")
    # a linked index sets the digit and the thumbnails
    index = int((labels == 4).nonzero()[0][2])
    open_page(driver, app_url + f"/mnist?mn_epochs=1&a={index}", "mnist")
    wait_for(lambda: text(driver, "mn-digit-a").strip() == "4", 30, message="digit 4 for the linked index")
    wait_for(lambda: driver.execute_script("return document.querySelector('#mn-thumbs-a button.selected')?.title")
             == f"test image {index}", 20, message="the linked image marked among the thumbnails")
    thumbs = driver.execute_script("return [...document.querySelectorAll('#mn-thumbs-a button')].map(b => b.title)")
    assert thumbs == [f"test image {i}" for i in (labels == 4).nonzero()[0][:10]]
    # a typed index sets the digit (not the layout's default index: Dash 4's Input compares Enter's value with the
    # value it was first rendered with, so typing that one back is not sent)
    second_six = int((labels == 6).nonzero()[0][1])
    box = driver.find_element(By.ID, "mn-idx-a")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(second_six), Keys.ENTER)
    wait_for(lambda: url_values(driver).get("a") == str(second_six), 20, message="the typed index")
    wait_for(lambda: text(driver, "mn-digit-a").strip() == "6", 20, message="digit 6 for a typed index")

    driver.find_element(By.ID, "mn-train").click()
    wait_for(lambda: "heatmap" in _slice_layout(driver).get("types", []), 180, message="the traced slice")
    marks = _slice_layout(driver)
    assert "<b>A: 6</b>" in marks["annotations"] and "<b>B: 9</b>" in marks["annotations"]
    assert {"mark A: 6", "mark B: 9"} <= set(marks["shapes"])
    area = driver.find_element(By.CSS_SELECTOR, "#mn-graph .nsewdrag")
    ActionChains(driver).move_to_element(area).move_by_offset(15, -25).perform()
    wait_for(lambda: "predicted" in text(driver, "mn-hover-text"), 30, message="the hover readout")
    shot(driver, "mnist-marked-hover")
    # another image B: the old readout goes
    driver.find_elements(By.CSS_SELECTOR, "#mn-thumbs-b button")[2].click()
    wait_for(lambda: text(driver, "mn-hover-text") == "", 20, message="the hover panel to clear")
    assert "hover the slice" in driver.execute_script(
        "return JSON.stringify(document.querySelector('#mn-hover-image .js-plotly-plot').layout.annotations)")
    wait_for(lambda: "heatmap" in _slice_layout(driver).get("types", []), 120, message="the retraced slice")
    shot(driver, "mnist-new-b")
    assert severe_console_errors(driver) == []
