"""The leaderboard site and the MLflow runs page as users see them: loaded in headless Chromium (Debian's ``chromium``
and ``chromium-driver``, driven by Selenium; ``.ci/run`` installs them), plus the ``artbench ui`` address.

Screenshots go to the test's tmp folder and, when ``ARTBENCH_SCREENSHOT_DIR`` is set, there too.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from artbench.tracking.mlflow import MlflowTracker, default_tracking_uri
from tests.conftest import run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or next(
    (p for p in ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver") if Path(p).is_file()), None
)
METHODS = ("mtl", "mtl_fo", "mtl_fo_rall")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tiny_store(out: Path) -> str:
    """An MLflow store as `artbench run` and `leaderboard build` leave it: a run with two nested seeds and a
    leaderboard run, in experiment ``tiny-synth``; returns the experiment id."""
    tracker = MlflowTracker(default_tracking_uri(out), "tiny-synth", out / "mlartifacts")
    tracker.start_run("mtl", {"task": "tiny-synth", "lr": 1e-3}, {"artbench.task": "tiny-synth"})
    for seed in (1, 2):
        tracker.start_seed(seed, {})
        tracker.end_seed({"overall.f1_macro": 0.3 + seed / 100}, [])
    tracker.end_run({"overall.f1_macro.mean": 0.315}, [], "FINISHED", "complete")
    tracker.log_finished_run("leaderboard", "leaderboard", {}, {"leader": "mtl"}, {"mtl.overall.f1_macro": 0.315}, [])
    MlflowTracker(default_tracking_uri(out), "other-task")
    return tracker.experiment_id


def _ui_url(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, out: Path, port: int) -> str:
    """The runs page that `artbench ui --task tiny-synth` prints (its server replaced by a stub)."""
    started: list[list[str]] = []
    monkeypatch.setattr("artbench.cli.ui.serve", lambda command, health, url: started.append(command) or 0)
    code, stdout, err = run_cli(capsys, "ui", "--task", "tiny-synth", "--out", str(out), "--port", str(port))
    assert code == 0, err
    assert started and started[0][-2:] == ["--port", str(port)]
    (line,) = stdout.strip().splitlines()
    return line.split(": ", 1)[1]


def test_ui_prints_the_runs_page_of_the_task_experiment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import mlflow

    experiment_id = _tiny_store(tmp_path)
    port = _free_port()
    url = _ui_url(capsys, monkeypatch, tmp_path, port)
    assert url == f"http://127.0.0.1:{port}/#/experiments/{experiment_id}/runs"
    experiment = mlflow.MlflowClient(default_tracking_uri(tmp_path)).get_experiment(experiment_id)
    assert experiment.name == "tiny-synth"
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    code, stdout, _ = run_cli(capsys, "ui", "--out", str(tmp_path), "--port", str(port))
    assert code == 0 and "runs of 'other-task': " in stdout and f"/#/experiments/{experiment_id}/runs" in stdout
    code, _, err = run_cli(capsys, "ui", "--task", "nope", "--out", str(tmp_path), "--port", str(port))
    assert code == 2 and "no MLflow experiment 'nope'" in err and "other-task, tiny-synth" in err


# ------------------------------------------------------------------------------------------------------ browser


@pytest.fixture(scope="module")
def browser() -> Iterator:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
        )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def _screenshot(driver, path: Path) -> Path:
    assert driver.save_screenshot(str(path)), path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if folder := os.environ.get("ARTBENCH_SCREENSHOT_DIR"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)
    return path


def _method_order(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [
        row.find_elements(By.TAG_NAME, "td")[1].text for row in driver.find_elements(By.CSS_SELECTOR, "#board tbody tr")
    ]


@pytest.mark.slow
def test_site_in_chromium(browser, capsys: pytest.CaptureFixture[str], tiny_task: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    runs, site = tmp_path / "runs", tmp_path / "site"
    for method in METHODS:
        options = ("--seeds", "2", "--set", "max_epochs=1", "--tracking-uri", "none", "--out", str(runs))
        code, _, err = run_cli(capsys, "run", str(tiny_task), method, *options)
        assert code == 0, err
    build = ("leaderboard", "build", "--task", str(tiny_task), "--runs", str(runs), "--out", str(site))
    code, _, err = run_cli(capsys, *build, "--tracking-uri", "none")
    assert code == 0, err

    browser.set_window_size(1400, 2600)  # the table and the three plots in one screenshot
    browser.get((site / "tiny-synth.html").as_uri())
    assert browser.find_element(By.CSS_SELECTOR, "h1").text == "Leaderboard: tiny-synth"
    order = _method_order(browser)
    assert sorted(order[:3]) == sorted(METHODS) and len(order) == 3 + 6  # three runs, SilkNet's six reference rows
    images = browser.find_elements(By.TAG_NAME, "img")
    assert len(images) == 3  # bars, per-class F1 against training frequency, critical-difference diagram
    for image in images:
        assert image.is_displayed()
        assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) > 0
    _screenshot(browser, tmp_path / "leaderboard-tiny-synth.png")

    header = browser.find_elements(By.CSS_SELECTOR, "#board thead th")[3]
    assert header.text == "F1 (macro)"
    header.click()  # ascending: the worst run first, the (higher) reference rows last
    assert _method_order(browser) != order and header.get_attribute("aria-sort") == "ascending"
    assert _column_values(browser, 4) == sorted(_column_values(browser, 4))
    header.click()
    assert _column_values(browser, 4) == sorted(_column_values(browser, 4), reverse=True)
    _screenshot(browser, tmp_path / "leaderboard-tiny-synth-sorted.png")

    browser.set_window_size(1400, 1000)
    browser.get((site / "index.html").as_uri())
    assert "tiny-synth" in browser.find_element(By.ID, "tasks").text
    _screenshot(browser, tmp_path / "leaderboard-index.png")


def _column_values(driver, column: int) -> list[float]:
    from selenium.webdriver.common.by import By

    cells = driver.find_elements(By.CSS_SELECTOR, f"#board tbody tr td:nth-child({column})")
    return [float(cell.get_attribute("data-value")) for cell in cells]


@contextmanager
def mlflow_ui(out: Path, port: int) -> Iterator[None]:
    """``mlflow ui`` on ``127.0.0.1:port`` over the store in ``out``; stopped whatever happens."""
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", default_tracking_uri(out)]
    proc = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("mlflow ui did not answer within 180 s")
                time.sleep(1)
        yield
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


@pytest.mark.slow
def test_mlflow_runs_page_in_chromium(
    browser, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    out = tmp_path / "runs"
    out.mkdir()
    experiment_id = _tiny_store(out)
    port = _free_port()
    url = _ui_url(capsys, monkeypatch, out, port)  # printed before the server starts, as `artbench ui` does
    assert url.endswith(f"/#/experiments/{experiment_id}/runs")
    with mlflow_ui(out, port):
        browser.get(url)
        body = browser.find_element(By.TAG_NAME, "body")
        WebDriverWait(browser, 120).until(lambda _: "leaderboard" in body.text and "mtl" in body.text)
        assert "Training runs" in body.text  # the runs table, not the GenAI overview
        assert f"/experiments/{experiment_id}/runs" in browser.current_url
        _screenshot(browser, tmp_path / "mlflow-runs.png")
