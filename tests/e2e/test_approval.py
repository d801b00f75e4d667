"""Issue 27, part 3: `deploy` shows the change and asks on a terminal when IAM access
broadens (a first deploy does); `n` leaves the stage unchanged, `y` deploys; without a
terminal the change is refused (exit 6) naming the flag.

The terminal is a real pseudo-terminal (Python's `pty`, no tmux needed): the deployer sees a
TTY on its standard input and error, as in a person's shell. Relies on: MiniStack with IAM and
TLS enforced (the deploy runs as the stage's deploy identity)."""
import os
import pty
import select
import subprocess
import time

from conftest import ROOT, bootstrap_as_root, run

STAGE = "e2eapproval"
PROMPT = "Deploy these changes? [y/N]"


def on_terminal(cmd: list, env: dict, answer: str | None, timeout: float = 300) -> tuple[int, str]:
    """Runs `cmd` with a pseudo-terminal as its standard input, output and error; types
    `answer` when the prompt shows. Its exit code and everything it wrote."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env={**env, "TERM": "dumb"},
                            cwd=ROOT, close_fds=True)
    os.close(slave)
    seen, answered, deadline = b"", False, time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other side closed: the process ended
                break
            if not chunk:
                break
            seen += chunk
            if answer is not None and not answered and PROMPT.encode() in seen:
                os.write(master, f"{answer}\n".encode())
                answered = True
        elif proc.poll() is not None:
            break
    try:
        code = proc.wait(timeout=30)
    finally:
        os.close(master)
    return code, seen.decode(errors="replace")


def stack_exists(emulator) -> bool:
    cfn = emulator.client("cloudformation")
    try:
        return bool(cfn.describe_stacks(StackName=f"pdcase-{STAGE}")["Stacks"])
    except cfn.exceptions.ClientError:
        return False


def test_a_broadening_deploy_asks_n_leaves_it_y_deploys_and_no_terminal_refuses(deployer, emulator, package):
    emulator.reset()
    env = emulator.env(STAGE)
    deploy = [str(deployer), "deploy", "--stage", STAGE, "--lambda-bootstrap", package["lambda"]["bootstrap"]]
    bootstrap_as_root(deploy, env)

    code, out = on_terminal(deploy, env, "n")
    assert PROMPT in out and "broadens IAM access" in out, out[-3000:]
    # The change shown: the roles the first deploy creates.
    assert "EtlFunctionRole" in out or "Role" in out, out[-3000:]
    assert code == 6, out[-2000:]
    assert "not approved" in out and not stack_exists(emulator)

    # No terminal: refused, naming the flag (the tests' own runs pass `never`).
    r = run([*deploy, "--require-approval", "broadening"], env=env, cwd=ROOT)
    assert r.returncode == 6, r.stderr
    assert "--require-approval never" in r.stderr and not stack_exists(emulator)

    code, out = on_terminal(deploy, env, "y")
    assert PROMPT in out and code == 0, out[-3000:]
    assert stack_exists(emulator)

    # Nothing changed: nothing to approve, no question.
    code, out = on_terminal(deploy, env, None)
    assert code == 0 and PROMPT not in out and "up to date" in out, out[-2000:]
