"""Issue 14, part 2: `deployer watch --stage S` deploys, then hotswaps on every change and
prints the functions' new log lines; Ctrl-C stops it cleanly.

Relies on: MiniStack (CloudFormation, Lambda as host processes writing to CloudWatch Logs, S3)
with IAM enforced for the deploy identity. The watch is given a bootstrap file
(`--lambda-bootstrap`), as when the user builds in another terminal: rebuilding the Lambda
inside the test would take minutes. What it rebuilds from is covered by the unit test of
`watch::classify`.
"""
import json
import os
import shutil
import signal
import subprocess
import threading
import time

from conftest import ROOT, bootstrap_as_root

STAGE = "e2ewatch"


class Output:
    """Collects a stream's lines in a thread, so the test can wait for one."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 300) -> str:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            time.sleep(0.2)
        raise AssertionError(f"no line with {text!r} in:\n" + "\n".join(self.lines[-40:]))


def test_watch_hotswaps_a_change_tails_the_logs_and_stops_on_ctrl_c(deployer, emulator, package, tmp_path):
    emulator.reset()
    bootstrap = tmp_path / "build" / "bootstrap"
    bootstrap.parent.mkdir()
    shutil.copy(package["lambda"]["bootstrap"], bootstrap)
    bootstrap_as_root([str(deployer), "watch", "--stage", STAGE], emulator.env(STAGE))
    # No terminal: its first deploy broadens IAM access, which asks by default.
    proc = subprocess.Popen([str(deployer), "watch", "--stage", STAGE, "--lambda-bootstrap", str(bootstrap),
                             "--require-approval", "never"],
                            env=emulator.env(STAGE), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    out, err = Output(proc.stdout), Output(proc.stderr)
    try:
        err.wait_for("watch: watching")
        assert any("a full deploy" in line for line in err.lines), err.lines  # nothing deployed before
        lam = emulator.client("lambda")
        function = f"pdcase-{STAGE}-table-refresher"
        before = lam.get_function_configuration(FunctionName=function)["CodeSha256"]

        # A build replaces the file (written aside, then renamed into place).
        changed = tmp_path / "build" / "bootstrap.new"
        changed.write_bytes(bootstrap.read_bytes() + b"\0edited\0")
        os.chmod(changed, 0o755)
        os.replace(changed, bootstrap)
        err.wait_for("hotswapped without a change set", timeout=120)
        assert lam.get_function_configuration(FunctionName=function)["CodeSha256"] != before

        # The new code runs and its log lines reach the watch.
        r = lam.invoke(FunctionName=function, Payload=json.dumps({"detail": {"object": {"key": "a/_SUCCESS"}}}))
        assert r["StatusCode"] == 200
        out.wait_for("[table-refresher] ", timeout=60)
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    assert code == 0, err.lines[-20:]
    err.thread.join(timeout=5)
    assert err.lines[-1] == "watch: stopped", err.lines[-5:]
