"""End to end: Debian's real prometheus-node-exporter with only its textfile collector, on a
loopback port, serves what `shmctl metrics --textfile-dir` wrote; scraped over HTTP, shmctl's
series carry the values of segments this test made."""
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import needs_isolation, run

parser = pytest.importorskip("prometheus_client.parser", reason="prometheus_client is a test dependency: "
                             "pip install '.[test]'")

BINARY = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
pytestmark = pytest.mark.skipif(BINARY is None, reason="prometheus-node-exporter is not installed "
                                "(Debian: apt-get install --no-install-recommends prometheus-node-exporter)")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def wait_until_serving(proc: subprocess.Popen, url: str, deadline: float = 30) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"node_exporter exited: {proc.stderr.read()}")
        try:
            scrape(url)
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.05)  # polling a real condition, with a deadline
    raise AssertionError("node_exporter did not answer in time")


@needs_isolation
def test_node_exporter_serves_shmctl_series(tmp_path, hold):
    made = hold({"kind": "sysv", "size": 9 * PAGE, "touch": 5 * PAGE, "fork": True}).objects[0]
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    url = f"http://127.0.0.1:{free_port()}/metrics"
    exporter = subprocess.Popen([BINARY, "--collector.disable-defaults", "--collector.textfile",
                                 f"--collector.textfile.directory={textfiles}",
                                 f"--web.listen-address={url.split('/')[2]}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_serving(exporter, url)
        r = run("metrics", "--textfile-dir", textfiles)
        assert (r.code, r.out, r.err) == (0, "", "")
        text = scrape(url)
    finally:
        exporter.terminate()
        exporter.wait(timeout=30)
    families = {f.name: f for f in parser.text_string_to_metric_families(text)}
    address = f"sysv:{made['shmid']}"

    def sample(name):
        found = [s for s in families[name].samples if s.labels.get("address") == address]
        assert len(found) == 1, (name, families[name].samples[:5])
        return found[0]
    assert sample("shmctl_segment_size_bytes").value == 9 * PAGE
    assert sample("shmctl_segment_rss_bytes").value == 5 * PAGE
    assert sample("shmctl_segment_attachments").value == 2
    assert sample("shmctl_segment_size_bytes").labels["owner"] == "root"
    assert families["shmctl_segments"].documentation.startswith("Segments of each kind")
    # node_exporter read the file without complaint: its own gauge says so, with the file's mtime
    mtimes = [s for s in families["node_textfile_mtime_seconds"].samples if s.labels["file"].endswith("shmctl.prom")]
    assert len(mtimes) == 1
    assert [s.value for s in families["node_textfile_scrape_error"].samples] == [0]
