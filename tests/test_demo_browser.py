"""The Gradio demo in a real browser: headless Debian Chromium driven by Playwright."""

import io
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make setup installs it)")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def demo_server(trained_tiny, tmp_path):
    pytest.importorskip("gradio")
    port = _free_port()
    log = open(tmp_path / "demo.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "vqspeech", "demo", "--model", str(trained_tiny / "checkpoint.pt"),
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                            env={"PATH": "/usr/bin:/bin", "GRADIO_ANALYTICS_ENABLED": "False",
                                 "HOME": str(tmp_path)})
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("demo exited: " + (tmp_path / "demo.log").read_text()[-2000:])
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("demo did not start: " + (tmp_path / "demo.log").read_text()[-2000:])
    yield url
    proc.terminate()
    proc.wait(10)


def test_convert_in_the_browser(demo_server, trained_tiny, tiny_corpus, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    from vqspeech.kaldi_data_dir import read_data_dir

    dd = read_data_dir(tiny_corpus / "data" / "test")
    utt = dd.utterances[0]
    src = Path(dd.audio_of(utt)[0])
    frames = sf.info(str(src)).frames
    target = [s for s in dd.speakers if not utt.startswith(s)][0]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page()
        page.goto(demo_server, wait_until="networkidle")
        page.locator("#source-audio input[type=file]").set_input_files(str(src))
        box = page.locator("#target-speaker input")
        box.click()
        page.get_by_role("option", name=target, exact=True).click()
        assert box.input_value() == target
        page.locator("#convert-button").click()
        link = page.locator("#converted-audio a[data-testid=download-link]")
        link.wait_for(state="attached", timeout=180_000)
        data = urllib.request.urlopen(link.get_attribute("href")).read()
        info = page.locator("#conversion-info").inner_text()
        page.get_by_text("About this model").click()
        about = page.locator("#model-info")
        about.wait_for(state="visible", timeout=10_000)
        about_text = about.inner_text()
        page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
        browser.close()
    y, sr = sf.read(io.BytesIO(data))
    assert sr == 16000 and len(y) == frames  # the converted audio has the source's length
    assert "real time" in info and target in info
    # the model's description is the one model-info prints: 16 kHz / hop 16 = 1000 codes/s of 16 codes
    from vqspeech.demo_app import model_description

    assert "16 x 8 (ema), 1000 codes/s" in about_text and "speakers (" in about_text
    assert about_text.strip() == model_description(trained_tiny / "checkpoint.pt").strip()
    assert (tmp_path / "demo.png").stat().st_size > 10_000


def test_twenty_concurrent_requests_and_oversize_upload(demo_server, tiny_corpus, tmp_path):
    """20 clients at once: every request completes (queued, one conversion at a time); nothing is lost."""
    gradio_client = pytest.importorskip("gradio_client")
    from concurrent.futures import ThreadPoolExecutor

    from vqspeech.kaldi_data_dir import read_data_dir

    dd = read_data_dir(tiny_corpus / "data" / "test")
    src = dd.audio_of(dd.utterances[0])[0]
    frames = sf.info(src).frames

    def one(i):
        client = gradio_client.Client(demo_server, verbose=False)
        audio, _, info = client.predict(gradio_client.handle_file(src), dd.speakers[i % len(dd.speakers)], 1.0, i,
                                        api_name="/convert")
        return sf.info(audio).frames, info

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(one, range(20)))
    assert len(results) == 20 and all(n == frames for n, _ in results)
    assert all("real time" in info for _, info in results)
    big = tmp_path / "big.wav"
    sf.write(big, np.zeros(16000 * 700, np.float32), 16000, subtype="FLOAT")  # ~45 MB > 20 MB limit
    client = gradio_client.Client(demo_server, verbose=False)
    with pytest.raises(Exception) as info:
        client.predict(gradio_client.handle_file(str(big)), dd.speakers[0], 1.0, 0, api_name="/convert")
    assert "large" in str(info.value).lower() or "size" in str(info.value).lower() or "413" in str(info.value)
