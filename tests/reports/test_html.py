"""``psyk report html``: the page's structure (stdlib html.parser, everywhere) and the page in a
real browser (headless Chromium: Debian's ``chromium`` package; ``make test`` installs it on
Debian-like machines, elsewhere the browser tests are skipped)."""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from psykedelic_cli.cli import html as html_command
from psykedelic_cli.cli.app import app
from psykedelic_cli.cli.report import REPORTS, ReportCommand
from psykedelic_cli.store import Store
from psykedelic_cli.store.schema import EIG_CRITERIA

MODES = ("det", "weight", "min_eig")


def results(seed: int) -> dict:
    """Every result kind the paper's reports read, numbers varying with ``seed``."""
    accuracy = 0.8 + seed / 100
    rows = {"None": {"accuracy": accuracy + 0.05, "compression_ratio": 0.0, "score": 0.0}}
    for i, mode in enumerate(MODES):
        ratio = 0.2 + i / 10 + seed / 100
        rows[mode] = {"accuracy": accuracy - i / 50, "compression_ratio": ratio, "score": 0.1 + i / 20}
    layers = [{"layer": "conv", "active_params": 9, "total_params": 18, "alive_kernels": 1, "total_kernels": 2}]
    return {
        "performance": rows,
        "final": {"mode": "det", **rows["det"]},
        "pruning_per_layer": {mode: layers for mode in rows},
        "eig_stats": {
            "complex_ratio": accuracy / 2,
            "criteria": {c: {"target_complex_ratio": 0.5, "pruned_complex_ratio": 0.25} for c in EIG_CRITERIA},
        },
        "set_analysis": {"criteria": ["det", "weight"], "total_kernels": 2, "shares": {"": 0.5, "det": 0.5}},
        "pruning_per_threshold": {"thresholds": [1e-4, 1e-3], "pruned_ratio": {"det": [0.1, accuracy]}, "rule": "own"},
        "history": [{"epoch": 1, "performance": rows}, {"epoch": 2, "performance": rows}],
        "learning_curve": {
            "epoch": [1, 2, 3], "accuracy": [0.3, 0.6, accuracy], "val_accuracy": [0.25, 0.5, accuracy - 0.02],
            "loss": [2.0, 1.0, 0.5], "val_loss": [2.1, 1.2, 0.6], "stage": [1, 1, 2],
        },
    }


def document(run_id: str, seed: int) -> dict:
    return {
        "id": run_id, "status": "completed", "source": "train",
        "created_at": "2026-01-01T00:00:00+00:00", "updated_at": "2026-01-01T00:00:00+00:00",
        "versions": {"psykedelic": "0.1.0", "numpy": "2.0"}, "host": {"hostname": "test"},
        "config": {
            "model": "MicroResNet20", "dataset": "digits", "optimizer": "adam", "lr": 1e-3, "epochs": 2,
            "batch_size": 32, "init_mode": "default", "l1_penalty": 1e-4, "threshold": 1e-4, "history_interval": 1,
            "seed": seed, "mode": "det",
        },
        "results": results(seed),
    }


RUN_IDS = [f"20260101T00000{seed}-{'abc'[seed - 1] * 6}" for seed in (1, 2, 3)]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The page of a three-seed store, written once for the module's tests."""
    folder = tmp_path_factory.mktemp("html")
    store = folder / "psyk-store.json"
    Store(store).add_runs([document(run_id, seed) for seed, run_id in enumerate(RUN_IDS, start=1)])
    command = ["--store", str(store), "report", "html", "--dataset", "digits", "-o", str(folder / "site")]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.stderr
    return folder / "site"


class Page(HTMLParser):
    """What the tests look at: tags, ids, links, images, scripts and text."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: dict[str, int] = {}
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.images: list[str] = []
        self.scripts: list[dict] = []
        self.urls: list[str] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if "id" in attributes:
            self.ids.add(attributes["id"])
        if tag == "a" and "href" in attributes:
            self.links.append(attributes["href"])
        if tag == "img":
            self.images.append(attributes["src"])
        if tag == "script":
            self.scripts.append(attributes)
        self.urls += [value for name, value in attrs if name in ("href", "src") and value]

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def page(site) -> Page:
    return Page((site / "index.html").read_text(encoding="utf-8"))


def test_every_report_with_runs_has_a_section_and_the_others_are_named(page):
    with_runs = {"eig-stats", "performance", "set-analysis", "per-threshold", "per-layer", "history", "significance"}
    assert {f"report-{name}" for name in with_runs} <= page.ids
    text = " ".join(page.text)
    assert "Not shown (no matching run has their results): sensitivity" in text  # registered, but no run has it
    assert {spec.name for spec in REPORTS} == with_runs | {"sensitivity"}


def test_tables_and_charts_are_there_and_self_contained(site, page):
    assert page.tags["table"] >= 20 and page.tags.get("figure", 0) == len(page.images) >= 8
    for source in page.images:
        assert (site / source).is_file(), source
        assert not source.startswith(("/", "http:", "https:", "//")), source
    assert not [url for url in page.urls if "://" in url or url.startswith("//")]  # nothing from a network
    assert page.scripts == [{}]  # one inline script, no src
    assert {p.name for p in site.iterdir()} == {  # eig-stats has tables only
        "index.html", "performance", "set-analysis", "per-threshold", "per-layer", "history", "significance",
    }


def test_every_number_links_to_its_runs_and_every_run_has_a_section(page):
    internal = [link for link in page.links if link.startswith("#")]
    assert all(link[1:] in page.ids for link in internal)  # no dangling anchor
    assert any(link.startswith("#set-") for link in internal)
    assert {f"run-{run_id}" for run_id in RUN_IDS} <= page.ids
    text = " ".join(page.text)
    for expected in ("learning curve", "versions", "psykedelic", "l1_penalty", "Filters used:", "dataset", "digits"):
        assert expected in text
    assert page.tags["svg"] == len(RUN_IDS)  # one inline learning curve per run
    assert page.tags["polyline"] == 2 * len(RUN_IDS)


def test_the_page_picks_up_a_newly_registered_report(tmp_path, monkeypatch):
    store = tmp_path / "psyk-store.json"
    Store(store).add_runs([document(RUN_IDS[0], 1)])
    extra = ReportCommand("performance-again", "performance", "performance_report", "A test row.", "psyk report")
    monkeypatch.setattr(html_command, "REPORTS", [extra])
    result = CliRunner().invoke(app, ["--store", str(store), "report", "html", "-o", str(tmp_path / "site")])
    assert result.exit_code == 0, result.stderr
    parsed = Page((tmp_path / "site" / "index.html").read_text(encoding="utf-8"))
    assert "report-performance-again" in parsed.ids and (tmp_path / "site" / "performance-again").is_dir()


def test_png_charts_and_bad_input(tmp_path):
    store = tmp_path / "psyk-store.json"
    Store(store).add_runs([document(RUN_IDS[0], 1)])

    def html(*args):
        return CliRunner().invoke(app, ["--store", str(store), "report", "html", *args])

    result = html("-o", str(tmp_path / "png"), "--image-format", "png", "--dataset", "digits")
    assert result.exit_code == 0, result.stderr
    assert all(src.endswith(".png") for src in Page((tmp_path / "png" / "index.html").read_text()).images)
    result = html("-o", str(tmp_path / "pdf"), "--image-format", "pdf")
    assert result.exit_code == 2
    assert result.stderr == "psyk: error: --image-format pdf: a browser page shows svg or png\n"
    assert not (tmp_path / "pdf").exists()
    afile = tmp_path / "afile"
    afile.write_text("")
    result = html("-o", str(afile))
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "is a file" in result.stderr
    result = html("-o", str(tmp_path / "none"), "--dataset", "cifar10")
    assert result.exit_code == 1 and "has results for any report" in result.stderr
    assert not (tmp_path / "none").exists()
    result = CliRunner().invoke(app, ["report", "html", "--help"])
    assert "psyk report html --dataset digits -o site/" in result.stdout


# --- in a real browser ---------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on PATH: `make test` installs Debian's chromium package where apt-get exists; "
    "elsewhere install Chromium to run the browser tests",
)
# The network is closed here and must not be needed: no background requests, updates or sync.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-extensions", "--enable-logging=stderr", "--v=0",
)


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
        capture_output=True, text=True, timeout=180, env={**os.environ, "LANG": "C.UTF-8"},
    )


def console_lines(stderr: str) -> list[str]:
    """What the page's scripts logged or threw (Chromium writes them as ``CONSOLE`` log lines)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@needs_chromium
def test_the_page_renders_in_chromium_without_console_errors(site, tmp_path):
    from PIL import Image

    shot = tmp_path / "page.png"
    shown = chromium(site / "index.html", tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2000")
    assert shot.is_file(), shown.stderr[-2000:]
    assert console_lines(shown.stderr) == []
    with Image.open(shot) as image:
        assert image.size == (1280, 2000)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 50  # text, tables and charts, not a blank page
    dom = chromium(site / "index.html", tmp_path / "profile", "--dump-dom")
    assert console_lines(dom.stderr) == []
    parsed = Page(dom.stdout)
    assert parsed.tags["table"] >= 20 and parsed.tags["img"] >= 8
    sortable = dom.stdout.count('<table class="sortable">')
    assert sortable >= 15 and dom.stdout.count('title="click to sort"') >= 2 * sortable  # the script ran


@needs_chromium
def test_a_missing_chart_is_a_console_error(site, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(site, broken)
    source = Page((broken / "index.html").read_text()).images[0]
    (broken / source).unlink()
    dom = chromium(broken / "index.html", tmp_path / "profile", "--dump-dom")
    assert any(f"chart missing: {source}" in line for line in console_lines(dom.stderr)), dom.stderr[-2000:]
