"""The dashboard: what build() writes, how it refuses bad input, and that a
real browser shows it (headless Chromium through selenium) with no console
error and every figure loaded."""
import functools
import html.parser
import http.server
import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bench.results import compare, provenance
from bench.sim import sweep
from bench import results, sim

report = pytest.importorskip("bench.results.report")    # needs seaborn (a dependency of the package)

# small runs, sampled often enough that the memory figure has something to show
WORKLOADS = {"seq-write": {"file_size": 1 << 20, "sample_interval_ns": 100_000},
             "dio-redirty": {"rounds": 8, "sample_interval_ns": 200_000}}
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _suite(seeds, commit: str, date: str, extra: dict | None = None) -> results.Suite:
    runs = []
    for w, params in WORKLOADS.items():
        runs += sweep.sweep(sim.strategies(), [w], seeds, "python", params, jobs=1, progress=False)
    md = provenance.collect(engine="python", seeds=len(seeds), params={}, command="compare",
                            git_commit=commit, date=date, **(extra or {}))
    return results.Suite(md, tuple(runs))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("results")
    old = results.dump(_suite(range(2), "a" * 40, "2026-01-01T10:00:00+00:00"), d / "old.json")
    new = results.dump(_suite(range(2, 4), "b" * 40 + "-dirty", "2026-01-02T10:00:00+00:00"),
                       d / "new.json")
    return [str(old), str(new)]


@pytest.fixture(scope="module")
def site(files, tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "dash"
    index = report.build(files, str(out))
    assert index == out / "index.html"
    return out


@pytest.fixture(scope="module")
def single(files, tmp_path_factory):
    out = tmp_path_factory.mktemp("single") / "dash"
    report.build(files[:1], str(out))
    return out


class _Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.links, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        if tag == "a":
            self.links.append(a.get("href", ""))

    def handle_data(self, data):
        self.text.append(data)


def _parse(path: Path) -> _Page:
    p = _Page()
    p.feed(path.read_text(encoding="utf-8"))
    return p


# ------------------------------------------------------------------ build()
def test_site_has_an_index_and_one_page_per_workload(site):
    pages = {p.name for p in site.glob("*.html")}
    assert pages == {"index.html", "seq-write.html", "dio-redirty.html"}
    index = _parse(site / "index.html")
    assert {"seq-write.html", "dio-redirty.html"} <= set(index.links)
    text = " ".join(index.text)
    for what in ("package version", "git commit", "kernel", "CPU model", "Python", "date",
                 "cost profile", "engine", "seeds", "aaaaaaa", "bbbbbbb-dirty",
                 "app throughput (MB/s)", "write p99 (µs)", "temp pages peak", "lost updates",
                 "Trends across the result files", "Strategies", "kernels and commits"):
        assert what in text, what
    from strategies import STRATEGIES       # each strategy named with its kernels and commits
    for s in ("merge-in-queue", "no-temp-page"):
        assert STRATEGIES[s].kernels in text, s
    page = " ".join(_parse(site / "dio-redirty.html").text)
    for what in ("Throughput", "Latency", "Memory over simulated time", "Pages per WRITE request",
                 "Correctness", "lost updates", "out of order", "max copies in flight", "hangs",
                 "deadlocks", "Comparison with the baseline", "merge-in-queue (base)"):
        assert what in page, what
    # no partial or temporary directories are left next to the site
    assert sorted(p.name for p in site.parent.iterdir()) == ["dash"]


def test_every_img_exists_as_a_png_with_alt_text(site):
    seen = 0
    for page in site.glob("*.html"):
        for img in _parse(page).imgs:
            f = site / img["src"]
            assert f.is_file(), f"{page.name}: {img['src']} missing"
            assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert len(img.get("alt", "")) > 40, f"{page.name}: {img['src']} lacks alt text"
            seen += 1
    # 4 figures per workload page, the trend figure on the pages and on the index, the heatmap
    assert seen == 2 * 5 + 2 + 1


def test_the_site_is_self_contained(site):
    for page in site.glob("*.html"):
        text = page.read_text()
        assert "<script" not in text
        assert "http://" not in text and "https://" not in text and "//cdn" not in text


def test_build_is_deterministic_and_replaces_its_own_site(files, site, single, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(single, out)           # a previous site, without trends: replaced whole
    report.build(files, str(out))
    a = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    b = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert a.keys() == b.keys()
    assert [str(k) for k in a if a[k] != b[k]] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again"]


def test_text_from_result_files_is_escaped(files, tmp_path):
    s = results.load(files[0])
    evil = "<script>alert(1)</script>"
    runs = tuple(replace(r, workload=evil if r.workload == "seq-write" else r.workload)
                 for r in s.runs)
    md = dict(s.metadata, kernel="<b>6.1</b>", note="a & b")
    p = results.dump(results.Suite(md, runs), tmp_path / "evil.json")
    out = tmp_path / "site"
    report.build([str(p)], str(out))
    for page in out.glob("*.html"):
        text = page.read_text()
        assert "<script" not in text and "<b>6.1" not in text
    index = (out / "index.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index and "a &amp; b" in index
    assert all(set(p.name) <= set("abcdefghijklmnopqrstuvwxyz0123456789.-_")
               for p in out.glob("*.html"))


def test_a_single_file_has_no_trend_section(single):
    assert "Trends" not in (single / "index.html").read_text()
    assert not list((single / "img").glob("*trend*"))
    assert len(list((single / "img").glob("*.png"))) == 2 * 4 + 1      # and the heatmap


@pytest.mark.parametrize("content, message", [
    (None, "no such result file"),
    ("{not json", "not JSON"),
    (json.dumps({"schema_version": 99, "metadata": {}, "runs": []}), "schema_version"),
    (json.dumps({"schema_version": 1, "metadata": {}, "runs": []}), "holds no runs"),
])
def test_bad_result_file_is_one_line_error(tmp_path, content, message):
    p = tmp_path / "bad.json"
    if content is not None:
        p.write_text(content)
    with pytest.raises(ValueError, match=message) as e:
        report.build([str(p)], str(tmp_path / "site"))
    assert "\n" not in str(e.value)
    assert not (tmp_path / "site").exists()


def test_refuses_a_file_or_a_foreign_directory_as_out_dir(files, tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        report.build(files, str(f))
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="not a `bench report` site"):
        report.build(files, str(foreign))
    assert (foreign / "thesis.tex").read_text() == "precious"
    with pytest.raises(ValueError, match="at least one"):
        report.build([], str(tmp_path / "x"))


def test_a_failure_halfway_keeps_the_previous_site(files, single, tmp_path, monkeypatch):
    out = tmp_path / "site"
    shutil.copytree(single, out)
    before = (out / "index.html").read_bytes()
    from bench.results.report import _figures

    def boom(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(_figures, "pages_per_request", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        report.build(files, str(out))
    assert (out / "index.html").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_cli_report_verb(files, tmp_path, capsys):
    from bench.__main__ import main
    assert main(["report", files[0], "-o", str(tmp_path / "cli")]) == 0
    assert "dashboard:" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "missing.json"), "-o", str(tmp_path / "cli2")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ERROR: ") and err.count("\n") == 1


# ------------------------------------------------------------------ in a browser
def _browser_or_skip():
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip(f"needs {CHROMIUM} and {CHROMEDRIVER} (Debian: chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    profile = tempfile.mkdtemp(prefix="report-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    # Without the background-networking flags a closed network refuses Chromium's own connections.
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,1000"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    return driver, profile


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(site):
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def _images_loaded(driver) -> list:
    deadline = time.monotonic() + 20
    while True:
        imgs = driver.execute_script(
            "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, "
            "i.naturalWidth])")
        if all(done for _, done, _ in imgs) or time.monotonic() > deadline:
            return imgs
        time.sleep(0.1)


def test_pages_render_in_headless_chromium(served, tmp_path_factory):
    driver, profile = _browser_or_skip()
    shots = tmp_path_factory.mktemp("screenshots")
    try:
        for page in ("index.html", "dio-redirty.html"):
            driver.get(f"{served}/{page}")
            imgs = _images_loaded(driver)
            assert imgs, f"{page}: no figures"
            broken = [src for src, done, width in imgs if not done or width <= 0]
            assert broken == [], f"{page}: images not loaded: {broken}"
            errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            assert errors == [], f"{page}: console errors: {errors}"
            assert driver.title.endswith("dashboard") or "·" in driver.title
            # the whole page, for a person to look at
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(1280, min(int(height), 12000))
            _images_loaded(driver)
            time.sleep(0.3)               # let the resized page paint before the shot
            shot = shots / f"{page}.png"
            assert driver.save_screenshot(str(shot))
            assert shot.stat().st_size > 10_000
            print(f"screenshot: {shot}")
            driver.set_window_size(1280, 1000)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# ------------------------------------------------------------------ what the pages say
def test_no_page_shows_a_local_absolute_path(files, site):
    for page in site.glob("*.html"):
        text = page.read_text()
        for f in files:
            assert os.path.dirname(f) not in text, page.name
        assert "/tmp/" not in text and "/home/" not in text and "/root/" not in text, page.name
    assert "old.json" in (site / "index.html").read_text()       # named, by its file name


def test_best_is_bold_only_where_the_difference_is_significant(tmp_path):
    two = results.dump(_suite(range(2), "c" * 40, "2026-01-03T10:00:00+00:00"), tmp_path / "2.json")
    four = results.dump(_suite(range(4), "d" * 40, "2026-01-04T10:00:00+00:00"), tmp_path / "4.json")
    report.build([str(two)], str(tmp_path / "s2"))
    assert 'class="num best"' not in (tmp_path / "s2" / "index.html").read_text()  # 2 seeds: no test
    report.build([str(four)], str(tmp_path / "s4"))
    index = (tmp_path / "s4" / "index.html").read_text()
    suite = results.load(four)
    wins = [v for v in compare.verdicts(suite, ("app_throughput_bps", "write_latency_ns",
                                                "temp_pages_peak")) if v.significant]
    assert wins, "the 4-seed fixture should have a significant winner somewhere"
    assert index.count('class="num best"') == sum(len(v.winners) for v in wins)


def test_the_overview_has_a_ratio_heatmap_with_significance_marks(tmp_path, site):
    index = _parse(site / "index.html")
    (heat,) = [i for i in index.imgs if i["src"] == "img/overview-ratios.png"]
    assert heat["alt"].startswith("Heatmaps of the ratio of each strategy's median to "
                                  "merge-in-queue's")
    text = " ".join(index.text)
    assert "Ratios to the base strategy" in text and "no cell is marked: fewer than 4 seeds" in text
    four = results.dump(_suite(range(4), "d" * 40, "2026-01-04T10:00:00+00:00"), tmp_path / "4.json")
    report.build([str(four)], str(tmp_path / "s4"))
    index = _parse(tmp_path / "s4" / "index.html")
    (heat,) = [i for i in index.imgs if i["src"] == "img/overview-ratios.png"]
    rows = [r for r in compare.rows(results.load(four)) if r.significant
            and r.metric == "app_throughput_bps"]
    marked = heat["alt"].split("app throughput: ")[1].split(". ")[0]
    assert rows, "the 4-seed fixture should have a significant ratio somewhere"
    for r in rows:
        assert f"{r.workload} {r.strategy} {r.ratio:.2f}" in marked
    assert "*: significant" in " ".join(index.text)


def test_strategies_that_coincide_are_drawn_once_and_named_together():
    from bench.results.report import _figures as F
    a = np.array([[0, 1, 2, 3, 0, 0], [10, 4, 5, 6, 0, 0]])
    series = {"x": a, "y": a.copy(), "z": a + 1}
    assert F.coinciding(series) == [["x", "y"], ["z"]]
    with F.theme():
        fig, alt = F.memory("w", series, 0, F.palette(list(series)), {"x": 99, "z": 0})
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["x = y", "z"]
    assert len(fig.axes[0].get_lines()) == 2 + 1           # two lines and x's dashed peak
    assert "x = y 99" in alt and "drawn once" in alt


def test_a_single_request_size_is_a_narrow_bar():
    from bench.results.report import _figures as F
    with F.theme():
        fig, _ = F.pages_per_request("w", {"a": {32: 10}, "b": {1: 5}}, F.palette(["a", "b"]))
    for ax in fig.axes[:2]:
        lo, hi = ax.get_xlim()
        (bar,) = ax.patches
        assert bar.get_width() / (hi - lo) < 0.15, (lo, hi)


@pytest.mark.parametrize("panels", [1, 2, 4])
def test_legends_sit_above_the_axes_inside_the_figure(panels):
    from bench.results.report import _figures as F
    names = ["temp-naive", "wait-in-writepages", "redirty-and-skip", "merge-in-queue",
             "no-temp-page"]
    kinds = ["write", "fsync", "sync", "throttle"][:panels]
    data = {k: {s: {"p50": 1.0, "p99": 2.0, "p999": 3.0, "max": 4.0} for s in names} for k in kinds}
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    with F.theme():
        fig, _ = F.latency("w", data, F.palette(names))
        FigureCanvasAgg(fig).draw()
    r = fig.canvas.get_renderer()
    box, whole = fig.legends[0].get_window_extent(r), fig.bbox
    assert whole.x0 - 1 <= box.x0 and box.x1 <= whole.x1 + 1, (box, whole)   # not cut off
    for ax in fig.axes:
        if ax.get_visible():
            assert box.y0 >= ax.get_window_extent(r).y1 - 1                   # outside the axes


# ------------------------------------------------------------------ layout in a browser
@pytest.fixture(scope="module")
def wide_site(files, tmp_path_factory):
    """The widest pages compare makes: five strategies and a kernel column."""
    s = results.load(files[1])
    kernel = tuple(replace(r, strategy="kernel-6.18.44", engine="mount") for r in s.runs
                   if r.strategy == "no-temp-page")
    d = tmp_path_factory.mktemp("wide")
    f = results.dump(results.Suite(s.metadata, s.runs + kernel), d / "wide.json")
    report.build([str(f)], str(d / "site"))
    return d / "site"


OVERFLOW_JS = """
const se = document.scrollingElement, bad = [];
if (se.scrollWidth > se.clientWidth) bad.push(['page', se.scrollWidth, se.clientWidth]);
document.querySelectorAll('.scroll, table, figure, img').forEach((e, i) => {
  if (e.scrollWidth > e.clientWidth + 1) bad.push([e.tagName, i, e.scrollWidth, e.clientWidth]);
  const r = e.getBoundingClientRect();
  if (r.right > se.clientWidth + 1) bad.push([e.tagName, i, 'right', r.right, se.clientWidth]);
});
return bad;"""


COMMITTED = Path(__file__).resolve().parent.parent / "results" / "dashboard"


@pytest.mark.parametrize("which", ["wide", "committed"])
@pytest.mark.parametrize("width", [1280, 800])
def test_no_page_overflows_its_window(wide_site, width, which):
    # the widest site the tests make, and the committed dashboard of results/baseline.json
    site = wide_site if which == "wide" else COMMITTED
    driver, profile = _browser_or_skip()
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        driver.set_window_size(width, 1000)
        pages = sorted(p.name for p in site.glob("*.html"))
        assert len(pages) == (3 if which == "wide" else 1 + len(compare.DEFAULT_SUITE))
        for page in pages:
            driver.get(f"http://127.0.0.1:{server.server_address[1]}/{page}")
            _images_loaded(driver)
            assert driver.execute_script("return document.querySelectorAll('table').length") > 0
            bad = driver.execute_script(OVERFLOW_JS)
            assert bad == [], f"{page} at {width} px: {bad}"
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()
        thread.join(5)
        shutil.rmtree(profile, ignore_errors=True)


# ------------------------------------------------------------------ report --history DIR
def _commit_file(d: Path, name: str, base: results.Suite, commit: str, date: str,
                 factor: float = 1.0) -> None:
    runs = tuple(replace(r, metrics={**r.metrics, "app_throughput_bps":
                                     r.metrics["app_throughput_bps"] * factor})
                 if (r.workload, r.strategy) == ("seq-write", "no-temp-page") else r
                 for r in base.runs)
    results.dump(results.Suite(dict(base.metadata, git_commit=commit, date=date), runs), d / name)


def test_history_orders_files_by_date_and_names_the_regressing_commit(files, tmp_path, capsys):
    from bench.__main__ import main
    base = results.load(files[0])
    d = tmp_path / "history"
    d.mkdir()
    # the names sort otherwise than the dates: the dates decide
    _commit_file(d, "c.json", base, "1" * 40, "2026-12-01T10:00:00+00:00")
    _commit_file(d, "a.json", base, "2" * 40, "2026-12-02T10:00:00+00:00")
    _commit_file(d, "b.json", base, "3" * 40, "2026-12-03T10:00:00+00:00", factor=0.8)
    assert [Path(f).name for f in report.history_files(str(d))] == ["c.json", "a.json", "b.json"]
    assert main(["report", "--history", str(d), "-o", str(tmp_path / "site")]) == 0
    index = tmp_path / "site" / "index.html"
    text = " ".join(_parse(index).text)
    assert "Regressions between successive result files" in text
    rows = [r for r in index.read_text().split("<tr>") if r.startswith('<td title="')]
    assert len(rows) == 1 and "app_throughput_bps" in rows[0]
    cells = [c.split(">", 1)[1].split("<", 1)[0] for c in rows[0].split("<td")[1:]]
    assert cells[0] == "3333333" and cells[1] == "2222222" and cells[3] == "no-temp-page"
    assert cells[6] == "-20.0%"
    trend = [i for i in _parse(tmp_path / "site" / "seq-write.html").imgs if "trend" in i["src"]]
    assert "(1111111, 2222222, 3333333)" in trend[0]["alt"]
    page = " ".join(_parse(tmp_path / "site" / "seq-write.html").text)
    assert "app_throughput_bps -20.0% at 3333333 (since 2222222)" in page
    # without the drop, nothing is named
    (d / "b.json").unlink()
    _commit_file(d, "b.json", base, "3" * 40, "2026-12-03T10:00:00+00:00")
    assert main(["report", "--history", str(d), "-o", str(tmp_path / "site")]) == 0
    assert "None: no file regressed" in (tmp_path / "site" / "index.html").read_text()


def test_history_reads_sweep_stores_beside_result_files(files, tmp_path):
    """A sweep's store (a directory of part-*.parquet) is one step of the history, dated by
    its metadata like a JSON file, and a regression it brings is named by its commit."""
    from bench.results import store
    base = results.load(files[0])
    d = tmp_path / "history"
    d.mkdir()
    _commit_file(d, "a.json", base, "2" * 40, "2026-12-02T10:00:00+00:00")
    (d / "notes").mkdir()                        # a directory that is not a store: ignored
    _commit_file(tmp_path, "b.json", base, "3" * 40, "2026-12-03T10:00:00+00:00", factor=0.8)
    b = results.load(tmp_path / "b.json")
    rows = [store.run_row(f"k{i}", "m", "s", r) for i, r in enumerate(b.runs)]
    store.append(d / "sweep-b", rows[:5], b.metadata)     # two parts, as a sweep appends them
    store.append(d / "sweep-b", rows[5:], b.metadata)
    got = report.history(str(d))
    assert [Path(f).name for f, _ in got] == ["a.json", "sweep-b"]
    from bench.__main__ import main
    assert main(["report", "--history", str(d), "-o", str(tmp_path / "site")]) == 0
    index = (tmp_path / "site" / "index.html").read_text()
    rows = [r for r in index.split("<tr>") if r.startswith('<td title="')]
    assert len(rows) == 1 and "app_throughput_bps" in rows[0]
    cells = [c.split(">", 1)[1].split("<", 1)[0] for c in rows[0].split("<td")[1:]]
    assert cells[0] == "3333333" and cells[1] == "2222222" and cells[6] == "-20.0%"


def test_history_errors_are_one_line(files, tmp_path, capsys):
    from bench.__main__ import main
    (tmp_path / "empty").mkdir()
    assert main(["report", "--history", str(tmp_path / "empty"), "-o", str(tmp_path / "s")]) == 2
    assert main(["report", "--history", str(tmp_path / "nope"), "-o", str(tmp_path / "s")]) == 2
    assert main(["report", files[0], "--history", str(tmp_path / "empty"), "-o",
                 str(tmp_path / "s")]) == 2
    assert main(["report", "-o", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4 and all(e.startswith("ERROR: ") for e in err), err
    assert "holds no result file" in err[0] and "not a directory" in err[1]
    assert not (tmp_path / "s").exists()


def test_a_latency_of_seconds_is_shown_in_seconds_so_seven_columns_fit():
    # stuck-server-long's fsync waits 40 s: in µs ("40,024,332") seven strategy columns overflow
    # an 800 px window; the row switches to seconds and says so in its label
    from bench import sim
    from bench.results.report import _site
    runs = tuple(sim.run(s, "stuck-server-long", seed=0) for s in ("merge-in-queue", "no-temp-page"))
    rows = compare.rows(results.Suite({}, runs), "merge-in-queue")
    html = _site._comparison_table("stuck-server-long", rows)
    assert "fsync p99 (s)" in html and "write p99 (µs)" in html
    assert "40,0" not in html
