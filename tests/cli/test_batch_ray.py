"""nst batch --executor ray: a two-node Ray cluster on loopback runs the same jobs as the local executor, to the
same results; a node removed mid-batch loses no job; a node that cannot write the outputs fails at once."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

# Every Ray service of these tests listens on loopback: set before Ray is first imported (workers inherit it).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from nst_jobs.batch import jobs_from_manifest, run_batch  # noqa: E402
from nst_run import assert_one_line_error, run  # noqa: E402

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'nst-toolkit[ray]')")
pytestmark = [pytest.mark.ray, pytest.mark.slow]

AUDIO = Path(__file__).resolve().parents[2] / "examples" / "audio"


@pytest.fixture(scope="module")
def cluster():
    """Two Ray nodes of one CPU each on this machine, loopback only; stopped at the end of the module."""
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    ray_constants.ENABLE_RAY_CLUSTER = False  # in case Ray was imported before the variable was set
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    try:
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()


@pytest.fixture
def manifest(tmp_path, demo_inputs):
    (tmp_path / "photos").mkdir()
    shutil.copy(demo_inputs["content_landscape"], tmp_path / "photos" / "a.png")
    shutil.copy(demo_inputs["content_portrait"], tmp_path / "photos" / "b.png")
    shutil.copy(demo_inputs["style_swirls"], tmp_path / "swirls.png")
    shutil.copy(AUDIO / "melody_sine.wav", tmp_path / "melody.wav")
    shutil.copy(AUDIO / "phrase_violin.wav", tmp_path / "violin.wav")
    path = tmp_path / "jobs.toml"
    path.write_text('seed = 0\niterations = 4\ndevice = "cpu"\n\n'
                    '[[job]]\ncontent = "photos/*.png"\nstyle = "swirls.png"\nimage_size = 32\nweights = "random"\n\n'
                    '[[job]]\ncontent = "melody.wav"\nstyle = "violin.wav"\nfilters = 64\ngriffin_lim_iters = 4\n')
    return path


def _same_outputs(a: Path, b: Path) -> None:
    import soundfile as sf
    from PIL import Image

    for name in ("a_swirls.png", "b_swirls.png"):
        assert np.array_equal(np.asarray(Image.open(a / name)), np.asarray(Image.open(b / name))), name
    wa, wb = sf.read(a / "melody_violin.wav")[0], sf.read(b / "melody_violin.wav")[0]
    assert np.array_equal(wa, wb)


def test_a_two_node_cluster_runs_the_manifest_to_the_local_executors_results(cluster, manifest, tmp_path, capsys):
    local = run_batch(jobs_from_manifest(manifest, tmp_path / "local"), tmp_path / "local", threads=1)
    assert local.ok and local.count("done") == 3
    code, stdout, err = run(["batch", manifest, "-o", tmp_path / "ray", "--executor", "ray", "--address",
                             cluster.address, "--threads", "1", "--no-progress"], capsys)
    assert code == 0 and "3 done, 0 skipped, 0 failed" in stdout, err
    _same_outputs(tmp_path / "local", tmp_path / "ray")
    import json

    doc = json.loads((tmp_path / "ray" / "batch.json").read_text())
    assert len({r["node"] for r in doc["jobs"]}) == 2, [r["node"] for r in doc["jobs"]]  # both nodes took jobs
    # Done is done, on any executor: the local executor skips what Ray made.
    again = run_batch(jobs_from_manifest(manifest, tmp_path / "ray"), tmp_path / "ray", resume=True)
    assert again.count("skipped") == 3


def _running_on(node) -> bool:
    """True while a worker of this Ray node runs a job (its process title is ray::_ray_job)."""
    raylet = node.all_processes["raylet"][0].process.pid
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == raylet and b"ray::_ray_job" in title:
            return True
    return False


def test_a_node_removed_mid_batch_loses_no_job(cluster, manifest, tmp_path):
    from nst_jobs.ray_executor import RayExecutor

    extra = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    shutil.copy(tmp_path / "photos" / "a.png", tmp_path / "photos" / "c.png")
    jobs = [j for j in jobs_from_manifest(manifest, tmp_path / "out") if j.kind == "image"]
    assert len(jobs) == 3
    for job in jobs:
        job.options.update(iterations=200, tolerance=0.0)  # long enough to be caught running
    removed = []

    def remove_when_busy():
        end = time.time() + 120
        while time.time() < end and not _running_on(extra):
            time.sleep(0.05)
        if _running_on(extra):
            cluster.remove_node(extra)
            removed.append(time.time())

    killer = threading.Thread(target=remove_when_busy, daemon=True)
    killer.start()
    # Three jobs on three one-CPU nodes: one of them lands on the extra node.
    result = run_batch(jobs, tmp_path / "out", executor=RayExecutor(address=cluster.address, threads=1))
    killer.join(timeout=5)
    assert removed, "no job ever ran on the extra node"
    assert result.ok and result.count("done") == 3, [r.get("error") for r in result.records]


def test_a_node_that_cannot_write_the_outputs_fails_its_job_at_once(cluster, manifest, tmp_path):
    from nst_jobs.ray_executor import RayExecutor

    jobs = jobs_from_manifest(manifest, tmp_path / "out")[:1]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "blocked").write_text("a file where a folder should be")
    jobs[0].output = str(tmp_path / "out" / "blocked" / "a.png")
    result = run_batch(jobs, tmp_path / "out", executor=RayExecutor(address=cluster.address, threads=1))
    error = result.records[0]["error"]
    assert result.count("failed") == 1 and "cannot write to" in error and "every node can reach" in error, error


def test_executor_ray_without_ray_says_how_to_install_it(manifest, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails, as without the extra
    code, _, err = run(["batch", manifest, "-o", tmp_path / "out", "--executor", "ray"], capsys)
    assert_one_line_error(code, err, "--executor ray needs Ray", "pip install 'nst-toolkit[ray]'")
    assert code == 2 and not (tmp_path / "out").exists()


def test_more_threads_than_any_node_has_is_refused_before_any_job(cluster, manifest, tmp_path, capsys):
    code, _, err = run(["batch", manifest, "-o", tmp_path / "out", "--executor", "ray", "--address", cluster.address,
                        "--threads", "8", "--no-progress"], capsys)
    assert_one_line_error(code, err, "--threads 8", "at most 1 CPU(s)")
    assert code == 2
