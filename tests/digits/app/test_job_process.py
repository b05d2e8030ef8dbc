"""A job in a process of its own: progress relayed, outcome and errors returned, stop obeyed."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import remote_jobs

from digits.app.job_process import RemoteJob, RemoteTraceback
from digits.training.finetune import FinetuneError

ROOT = Path(__file__).resolve().parents[3]


class Recorder:
    """Stands in for the runner's Run: keeps every progress call; stop when told."""

    def __init__(self):
        self.calls = []
        self.stop = threading.Event()

    def should_stop(self):
        return self.stop.is_set()

    def __getattr__(self, method):
        return lambda *args, **kwargs: self.calls.append((method, args, kwargs))


def test_the_job_runs_in_another_process_and_its_loader_is_called_there():
    run = Recorder()
    outcome = RemoteJob(remote_jobs.report, (3,))(run, remote_jobs.loader_pid)
    pid, loaded = outcome.summary
    assert pid != f"pid {os.getpid()}"
    assert loaded == f"loaded {pid.removeprefix('pid ')}", "the data is loaded by the child"


def test_every_progress_call_reaches_the_run_in_order_whatever_the_job_prints():
    run = Recorder()
    RemoteJob(remote_jobs.report, (3,))(run, remote_jobs.loader_pid)
    assert run.calls == [
        ("expect", (1, 3), {}),
        *[("on_batch", (1, 0.5, 1.0), {})] * 3,
        ("say", ("almost done",), {"progress": 0.99}),
    ]


def test_a_stop_request_reaches_the_job_which_returns_what_it_has():
    run = Recorder()
    result = {}
    thread = threading.Thread(
        target=lambda: result.update(
            outcome=RemoteJob(remote_jobs.until_stopped)(run, remote_jobs.loader_pid)
        )
    )
    thread.start()
    while not run.calls:  # the job has started
        thread.join(0.01)
    run.stop.set()
    thread.join(60)
    assert not thread.is_alive()
    assert result["outcome"].summary[0].startswith("stopped after ")


def test_an_error_the_user_can_fix_comes_back_as_itself():
    with pytest.raises(FinetuneError, match="at least 8 digits"):
        RemoteJob(remote_jobs.fail_for_the_user)(Recorder(), remote_jobs.loader_pid)


def test_a_bug_comes_back_with_the_childs_traceback_as_its_cause():
    with pytest.raises(ZeroDivisionError) as caught:
        RemoteJob(remote_jobs.divide_by_zero)(Recorder(), remote_jobs.loader_pid)
    cause = caught.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "divide_by_zero" in str(cause)
    assert "Traceback" in str(cause)


def test_a_child_that_dies_fails_the_job_with_its_exit_status():
    with pytest.raises(RuntimeError, match=r"ended without a result \(exit status 3\)"):
        RemoteJob(remote_jobs.die)(Recorder(), remote_jobs.loader_pid)


def test_when_the_parent_fails_the_child_is_stopped_and_waited_for():
    class Failing(Recorder):
        def say(self, *args, **kwargs):
            raise KeyError("the page went away")

    with pytest.raises(KeyError):
        RemoteJob(remote_jobs.until_stopped)(Failing(), remote_jobs.loader_pid)
    # Returning at all shows the child ended: the call waits for it after closing its input.


def ended(pid: int) -> bool:
    """Whether process pid has exited (a zombie nobody has reaped yet counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_the_child_never_outlives_its_server(tmp_path):
    pid_file = tmp_path / "child.pid"
    server = subprocess.Popen(
        [sys.executable, "-c", PARENT_SCRIPT, str(pid_file)], cwd=ROOT, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    server.kill()
    server.wait()
    while not ended(child):
        assert time.monotonic() < deadline, "the job went on after its server was killed"
        time.sleep(0.05)
    assert b"Traceback" not in server.stderr.read()


# A server in miniature: one run of the job above, which only ends if something stops it.
PARENT_SCRIPT = """
import sys
sys.path[:0] = ["tests", "."]
from digits.app.job_process import RemoteJob
from helpers import remote_jobs

class Run:
    def should_stop(self):
        return False

    def __getattr__(self, method):
        return lambda *args, **kwargs: None

RemoteJob(remote_jobs.report_pid_then_run_until_stopped, (sys.argv[1],))(Run(), int)
"""


def test_a_finished_job_ends_its_process_cleanly(capfd):
    # The thread waiting for a stop byte holds the input's lock; the child must not wait for
    # it at shutdown (Python aborts with "could not acquire lock ... at interpreter shutdown").
    for _ in range(3):
        RemoteJob(remote_jobs.report, (1,))(Recorder(), remote_jobs.loader_pid)
    log = capfd.readouterr().err
    assert log.count("noise on standard output") == 3
    assert "Fatal Python error" not in log
