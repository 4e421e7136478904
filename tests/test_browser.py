"""The report page in a real headless browser (Debian's chromium): no console message, every figure drawn,
sorting works, and a screenshot is saved. Skips only where no chromium is installed (`make system` installs it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_report import COMMITTED, simulated_result

from singerbench.report import OK_ATTRIBUTE, load_entries
from singerbench.report_page import build, write

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((b for b in BROWSERS if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no headless browser: install Debian's chromium (`make system` does) to run this test"
)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]


def load(page: Path, profile: Path, *extra: str, fragment: str = "") -> tuple[str, list[str]]:
    """Load ``page``; return the DOM after its scripts ran and every console message the page produced."""
    proc = subprocess.run(
        [BROWSER, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=5000", *extra, "--dump-dom", page.resolve().as_uri() + fragment],
        capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


def mark(dom: str) -> str | None:
    m = re.search(OK_ATTRIBUTE + r'="([^"]*)"', dom)
    return m and m.group(1)


def test_the_report_page_loads_cleanly_draws_every_figure_and_sorts(tmp_path, test_cache):
    results = tmp_path / "results"
    simulated_result("alpha", 0.9, seed=1, class_counts=(3, 6)).to_json(results / "alpha.json")
    simulated_result("beta", 0.4, seed=2, class_counts=(3, 6)).to_json(results / "beta.json")
    out = tmp_path / "site"
    built = build(load_entries([COMMITTED, results]), out)
    write(built, out)
    assert len(built.figures) >= 6

    dom, console = load(out / "index.html", tmp_path / "profile", fragment="#check-sorting")
    assert console == []
    assert mark(dom) == "yes"
    assert dom.count("<figure") == len(built.figures)

    shot = test_cache / "report-page.png"
    subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,3200",
                    f"--screenshot={shot}", (out / "index.html").resolve().as_uri()],
                   capture_output=True, text=True, timeout=180, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_the_browser_check_fails_on_a_console_error_or_a_missing_figure(tmp_path):
    out = tmp_path / "site"
    built = build(load_entries([COMMITTED]), out)
    broken = re.sub(r"<svg .*?</svg>", "", built.html, count=1, flags=re.S)  # a figure without its drawing
    broken = broken.replace("<script>", "<script>notDefinedAnywhere();</script><script>", 1)
    (tmp_path / "broken.html").write_text(broken)
    dom, console = load(tmp_path / "broken.html", tmp_path / "profile")
    assert any("notDefinedAnywhere" in line for line in console)
    assert mark(dom).startswith("no: ") and "not drawn" in mark(dom)
