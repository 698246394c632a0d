"""rs3d-demo (issue 22, item 4): the page's analysis in plain Python against rs3d-predict's own answers for the same
video, and the real page in Debian's headless Chromium driven by Selenium against a trained toy model."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import av
import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, moving_frames, write_h264

from rs3d.checkpoint import save_atomic
from rs3d.commands import predict
from rs3d.config import load_config
from rs3d.data.clip_sampling import ClipSpec
from rs3d.data.decoders import VideoDecodeError
from rs3d.inference import Predictor
from rs3d.inference.demo import analyse, drop_old_renders
from rs3d.inference.windows import label_window_sec
from rs3d.models import build_model

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"  # Debian's packages chromium, chromium-driver


@pytest.fixture()
def checkpoint(tmp_path) -> str:
    """The tiny RS3D with random weights and 8 class names. The head's bias steps by 0.05 per class, so no two
    classes are within rounding of each other (random weights alone left some 1e-4 apart, and the order of such a
    pair can flip with the CPU thread count, which the two paths compared here may not share)."""
    cfg = load_config(os.path.join(REPO_ROOT, "configs/toy/rs3d_tiny.yaml"))
    torch.manual_seed(0)
    path = str(tmp_path / "model.pyth")
    state = build_model(cfg, init=False).state_dict()
    state["fc.bias"] = 0.05 * torch.arange(8.0)
    save_atomic({"model": state, "config": cfg.dump(),
                 "class_names": [f"class_{i}" for i in range(8)]}, path)
    return path


def frames_of(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])])


@pytest.mark.slow
def test_analysis_matches_rs3d_predict_for_the_same_video(checkpoint, tmp_path, capsys):
    # 2 s at 30 fps, longer than a clip (8 frames 4 apart: 29 frames), so windows and test views see different frames
    video = write_h264(tmp_path / "moving.mp4", moving_frames(60, 48, 64))
    window = ["--window-sec", "0.5", "--stride-sec", "0.25"]
    # rs3d-predict's answers: the multi-view top-5, and every class's probability per window (--topk 8)
    assert predict.main([str(video), "--checkpoint", checkpoint, "--output", str(tmp_path / "whole.json")]) == 0
    assert predict.main([str(video), "--checkpoint", checkpoint, "--topk", "8", *window, "--render",
                         str(tmp_path / "cli.mp4"), "--output", str(tmp_path / "windows.json")]) == 0
    whole = json.loads((tmp_path / "whole.json").read_text())[0]["top"]
    windows = json.loads((tmp_path / "windows.json").read_text())[0]["timeline"]
    assert len(windows) >= 3

    predictor = Predictor(None, checkpoint, "cpu", topk=5)
    result = analyse(predictor, str(video), str(tmp_path / "page"), 0.5, 0.25)
    assert list(result.labels) == [t["name"] for t in whole]  # the bars: best first
    assert list(result.labels.values()) == pytest.approx([t["prob"] for t in whole], abs=1e-5)
    assert [row[:2] for row in result.timeline] == [[w["start"], w["end"]] for w in windows]
    assert [row[2:] for row in result.timeline] == [[f"{t['name']} {t['prob']:.2f}" for t in w["top"][:3]]
                                                    for w in windows]
    lines = result.figure.axes[0].get_lines()  # one line per top-5 class, its probability in every window
    assert [line.get_label() for line in lines] == [t["name"] for t in whole]
    for line in lines:
        expected = [next(t["prob"] for t in w["top"] if t["name"] == line.get_label()) for w in windows]
        assert list(line.get_ydata()) == pytest.approx(expected, abs=1e-5)
        assert list(line.get_xdata()) == pytest.approx([(w["start"] + w["end"]) / 2 for w in windows])
    # the overlay video is the one rs3d-predict --render draws: same frames, labels on them
    page, cli, source = frames_of(result.rendered), frames_of(tmp_path / "cli.mp4"), frames_of(video)
    assert page.shape == cli.shape == source.shape
    assert np.abs(page.astype(int) - cli).max() <= 2
    assert np.abs(page[:, :10].astype(int) - source[:, :10]).mean() > 20  # the label box is drawn

    # a video of one window has a timeline row but no plot; no render when not asked
    single = analyse(predictor, str(video), str(tmp_path / "page2"), 5.0, render=False)
    assert len(single.timeline) == 1 and single.figure is None and single.rendered is None
    assert not (tmp_path / "page2").exists()
    capsys.readouterr()


def test_an_unreadable_video_is_an_error_and_old_renders_go(checkpoint, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    predictor = Predictor(None, checkpoint, "cpu")
    with pytest.raises(VideoDecodeError) as info:
        analyse(predictor, str(broken), str(tmp_path / "out"))
    assert info.value.path == str(broken) and not (tmp_path / "out").exists()

    work = tmp_path / "work"
    (work / "old").mkdir(parents=True)
    (work / "new").mkdir()
    hour_ago = time.time() - 3700
    os.utime(work / "old", (hour_ago, hour_ago))
    drop_old_renders(str(work))
    assert sorted(p.name for p in work.iterdir()) == ["new"]


def test_timeline_windows_are_about_one_clip_long():
    # README: windows about one clip long at 30 fps (span = (frames - 1) x stride + 1 source frames), >= 1 s
    assert label_window_sec(ClipSpec(num_frames=8, sampling_rate=4)) == 1.0  # 29 frames: 0.97 s -> 1 s
    assert label_window_sec(ClipSpec(num_frames=32, sampling_rate=2)) == 2.1  # 63 frames
    assert label_window_sec(ClipSpec(num_frames=16, sampling_rate=4), fps=25.0) == 2.4  # 61 frames at 25 fps


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture()
def chosen(trained_toy) -> tuple[str, str]:
    """A test video of the trained toy model that it gets right (it names nearly all of them), and its class."""
    predictor = Predictor(None, os.path.join(trained_toy["out"], "model_final.pyth"), "cpu")
    rows = [line.split() for line in open(os.path.join(trained_toy["data"], "test.csv"))]
    videos = [(os.path.join(trained_toy["data"], path), predictor.class_names[int(label)]) for path, label in rows]
    return next((v, c) for v, c in videos if predictor.predict(v).top[0][0] == c)


def write_y4m(src: str, dst: str) -> None:
    """The video as raw YUV4MPEG2, the format Chromium's fake webcam plays (in a loop)."""
    with av.open(src) as source, av.open(dst, "w", format="yuv4mpegpipe") as target:
        stream = target.add_stream("rawvideo", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"  # the trained toy videos' size
        for frame in source.decode(video=0):
            target.mux(stream.encode(frame.reformat(format="yuv420p")))
        target.mux(stream.encode())


@pytest.fixture()
def browser(chosen, tmp_path):
    """Debian's headless Chromium through its chromedriver (the README's test command installs both), with a fake
    webcam that films the chosen test video."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -r "
                                    "requirements.txt installs it)")
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("Debian's Chromium is not installed: apt-get install -y chromium chromium-driver (the README's "
                    "test command does)")
    write_y4m(chosen[0], str(tmp_path / "camera.y4m"))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1700",
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={tmp_path / 'camera.y4m'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture()
def demo_server(trained_toy, tmp_path):
    """``rs3d-demo`` on a free localhost port with the trained toy model; yields (url, checkpoint)."""
    pytest.importorskip("gradio", reason="the demo extra is not installed (pip install rs3d[demo])")
    checkpoint = os.path.join(trained_toy["out"], "model_final.pyth")
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", GRADIO_TEMP_DIR=str(tmp_path / "gradio"),
               NO_PROXY="127.0.0.1,localhost")
    server = subprocess.Popen([sys.executable, "-m", "rs3d.commands.demo", "--checkpoint", checkpoint, "--port",
                               str(port), "--device", "cpu", "--window-sec", "0.5", "--stride-sec", "0.25"],
                              stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while True:
        assert server.poll() is None, (tmp_path / "server.log").read_text()
        try:
            urllib.request.urlopen(url, timeout=5).close()
            break
        except OSError:
            assert time.time() < deadline, "rs3d-demo did not answer in 180 s:\n" + (tmp_path / "server.log").read_text()
            time.sleep(0.5)
    yield url, checkpoint
    server.terminate()
    server.wait(timeout=30)
    log.close()


@pytest.mark.slow
def test_the_page_in_a_headless_browser(demo_server, browser, chosen, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, checkpoint = demo_server
    predictor = Predictor(None, checkpoint, "cpu", topk=5)
    video, true_class = chosen
    expected = predictor.predict(video).top
    windows = predictor.predict(video, 0.5, 0.25).timeline

    def find(selector):
        return browser.find_elements(By.CSS_SELECTOR, selector)

    def upload_and_classify(path):
        browser.get(url)
        WebDriverWait(browser, 60).until(lambda _: find("#video-in input[type=file]"))
        find("#video-in input[type=file]")[0].send_keys(path)
        WebDriverWait(browser, 60).until(lambda _: find("#video-in video"))
        find("#classify")[0].click()

    upload_and_classify(video)
    WebDriverWait(browser, 120).until(lambda _: find("#rendered video") and find("#timeline-plot img"))
    assert find("[data-testid=label-output-value]")[0].text == true_class
    bars = [(m.get_attribute("aria-label"), float(m.get_attribute("value"))) for m in find("#top-classes meter")]
    assert [name for name, _ in bars] == [name for name, _ in expected]
    assert [p for _, p in bars] == pytest.approx([p for _, p in expected], abs=1e-5)
    # the timeline: one table row per window, the plot drawn
    table = find("#timeline-table [role=grid]")[0]
    assert int(table.get_attribute("aria-rowcount")) == 1 + len(windows)
    first = [find(f"#timeline-table [data-testid=cell-0-{c}]")[0].text for c in range(3)]
    assert first == [f"{windows[0]['start']:g}", f"{windows[0]['end']:g}",
                     f"{windows[0]['top'][0]['name']} {windows[0]['top'][0]['prob']:.2f}"]
    assert int(find("#timeline-plot img")[0].get_attribute("naturalWidth")) > 300
    # the overlay video: the browser plays it, and the file the page serves has every frame of the upload
    rendered = find("#rendered video")[0]
    WebDriverWait(browser, 30).until(lambda _: browser.execute_script("return arguments[0].readyState", rendered) >= 1)
    duration = browser.execute_script("return arguments[0].duration", rendered)
    source = frames_of(video)
    assert duration == pytest.approx(len(source) / 30.0, abs=0.05)  # the toy videos are 30 fps
    with urllib.request.urlopen(rendered.get_attribute("src"), timeout=30) as answer:
        (tmp_path / "served.mp4").write_bytes(answer.read())
    assert frames_of(tmp_path / "served.mp4").shape == source.shape
    # everything the page loaded came from the demo server itself (no font server, CDN or analytics)
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and [u for u in loaded if not u.startswith((url, "data:", "blob:"))] == []
    browser.save_screenshot(str(tmp_path / "demo_page.png"))
    assert (tmp_path / "demo_page.png").stat().st_size > 20_000

    # a recording from the (fake) webcam, which films the same video: the page's answer is the predictor's for the
    # recorded file (a WebM from the browser's MediaRecorder, with no frame count or duration in its header)
    browser.get(url)
    WebDriverWait(browser, 60).until(lambda _: find("#video-in button[aria-label='Capture from camera']"))
    find("#video-in button[aria-label='Capture from camera']")[0].click()
    WebDriverWait(browser, 30).until(lambda _: find("#video-in [title='grant webcam access'] button"))
    find("#video-in [title='grant webcam access'] button")[0].click()
    WebDriverWait(browser, 30).until(lambda _: find("#video-in button[aria-label='start recording']"))
    find("#video-in button[aria-label='start recording']")[0].click()  # Record
    time.sleep(3)
    find("#video-in button[aria-label='start recording']")[0].click()  # the same button, now Stop
    WebDriverWait(browser, 60).until(lambda _: find("#video-in video[data-testid=video-player]"))
    find("#classify")[0].click()
    WebDriverWait(browser, 120).until(lambda _: find("#rendered video"))
    recorded = tmp_path / "recorded.webm"
    with urllib.request.urlopen(find("#video-in video[data-testid=video-player]")[0].get_attribute("src")) as answer:
        recorded.write_bytes(answer.read())
    assert len(frames_of(recorded)) >= 30  # about 3 s were recorded
    answer = predictor.predict(str(recorded)).top
    WebDriverWait(browser, 30).until(lambda _: find("[data-testid=label-output-value]")[0].text == answer[0][0])
    bars = [(m.get_attribute("aria-label"), float(m.get_attribute("value"))) for m in find("#top-classes meter")]
    assert bars == [(name, pytest.approx(p, abs=1e-5)) for name, p in answer]

    # a file that is not a video: the page says so in one message naming the upload
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    upload_and_classify(str(broken))
    WebDriverWait(browser, 60).until(lambda _: any(t.text.startswith("broken.mp4: ") for t in find(
        "[data-testid=toast-text]")))
    messages = [t.text for t in find("[data-testid=toast-text]") if t.text.startswith("broken.mp4: ")]
    assert str(tmp_path) not in messages[0] and "/gradio/" not in messages[0]
