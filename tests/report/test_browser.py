"""The run report renders in headless Chromium: every figure loads, no console errors, a screenshot is taken.

Needs Debian's ``chromium``; when it is absent and apt-get is usable (root), the test installs it first, otherwise it
is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import matplotlib.image as mpimg
import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
# Injected first in <head> of a copy of the page: records script and resource errors (capture phase, since image
# errors do not bubble) and console.error calls, then on load writes what it saw into the title for --dump-dom.
CHECK = """<script>
var seen = [];
window.addEventListener('error', function (e) {
  seen.push(e.message || ('failed to load ' + String((e.target && e.target.src) || '').slice(0, 60)));
}, true);
var consoleError = console.error;
console.error = function () { seen.push('console.error: ' + Array.from(arguments).join(' ')); };
window.addEventListener('load', function () {
  var images = Array.from(document.images);
  document.title = 'CHECK ' + JSON.stringify({
    images: images.length,
    broken: images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).map(function (i) {
      return i.alt; }),
    sections: document.querySelectorAll('section.probe').length,
    sectionsWithImage: Array.from(document.querySelectorAll('section.probe')).filter(function (s) {
      return s.querySelector('img'); }).length,
    errors: seen});
});
</script>"""


def chromium() -> str:
    """The chromium binary, installing Debian's package when it is missing and apt-get can be used."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if not shutil.which("apt-get") or os.geteuid() != 0:
        pytest.skip("headless Chromium is not installed and apt-get is not usable here (need root): "
                    "install Debian's `chromium` package to run the browser test")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "install", "-y", "chromium"], ["apt-get", "update"],
                    ["apt-get", "install", "-y", "chromium"]):
        try:
            subprocess.run(command, env=env, capture_output=True, timeout=900, check=False)
        except (OSError, subprocess.TimeoutExpired):
            break
        if shutil.which("chromium"):
            return shutil.which("chromium")
    pytest.skip("could not install Debian's `chromium` with apt-get (no package source reachable?)")


def render(browser: str, page, profile, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=120)


def test_report_renders_with_every_figure_loaded_and_no_console_errors(fixture_run, tmp_path):
    browser = chromium()
    page = (fixture_run / "index.html").read_text()
    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("<head>", "<head>" + CHECK, 1))

    dom = render(browser, checked, tmp_path / "profile-dom", "--enable-logging=stderr", "--v=0",
                 "--virtual-time-budget=5000", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    title = re.search(r"<title>CHECK (.*?)</title>", dom.stdout, re.S)
    assert title, "the check script did not run:\n" + dom.stdout[:1000]
    report = json.loads(title.group(1).replace("&amp;", "&").replace("&quot;", '"'))
    assert report["broken"] == [] and report["errors"] == []
    assert report["images"] == 3 and report["sections"] == 5 and report["sectionsWithImage"] == 3
    assert not [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]

    shot = tmp_path / "report.png"
    taken = render(browser, fixture_run / "index.html", tmp_path / "profile-shot", "--window-size=1280,1600",
                   f"--screenshot={shot}")
    assert taken.returncode == 0 and shot.exists(), taken.stderr[-2000:]
    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (1600, 1280) and pixels.std() > 0.05
