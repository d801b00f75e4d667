"""Issue 27, part 6: every verb's help has examples, and every argument of every verb says
what it is. Relies on the `deployer` binary only (clap's rendered help)."""
import re

import pytest

from conftest import run


def verbs(deployer) -> list[str]:
    r = run([deployer, "--help"])
    assert r.returncode == 0, r.stderr
    section = r.stdout.split("Commands:", 1)[1].split("Options:", 1)[0]
    return [m.group(1) for m in re.finditer(r"^  ([a-z][\w-]*)\s", section, re.M) if m.group(1) != "help"]


def undescribed(help_text: str) -> list[str]:
    """Arguments listed without a description: an entry line (`  -s, --stage <STAGE>`,
    `  <SQL>`) with no text after it and none on the next, more indented, line."""
    lines = help_text.splitlines()
    missing = []
    for i, line in enumerate(lines):
        m = re.match(r"^(\s{2,})((?:-\w, )?--[\w-]+(?: <[\w_]+>)?(?:\.\.\.)?|<[\w_]+>(?:\.\.\.)?|\[[\w_]+\](?:\.\.\.)?)(.*)$", line)
        if not m or m.group(2) in ("-h, --help", "-V, --version"):
            continue
        if m.group(3).strip():
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        indent = len(nxt) - len(nxt.lstrip())
        if not nxt.strip() or indent <= len(m.group(1)) or nxt.strip().startswith("-"):
            missing.append(m.group(2))
    return missing


def test_the_check_finds_an_undescribed_argument():
    text = "Options:\n      --stage <STAGE>\n          The stage\n      --yes\n\n  -h, --help\n          Print help\n"
    assert undescribed(text) == ["--yes"]


def test_every_verb_has_examples_and_every_argument_a_description(deployer):
    names = verbs(deployer)
    assert {"deploy", "diff", "teardown", "trigger", "logs", "invoke"} <= set(names), names
    problems = {}
    for verb in names:
        r = run([deployer, verb, "--help"])
        assert r.returncode == 0, (verb, r.stderr)
        missing = undescribed(r.stdout)
        if missing or "Examples:" not in r.stdout:
            problems[verb] = {"undescribed": missing, "examples": "Examples:" in r.stdout}
    assert not problems, problems
    deploy = run([deployer, "deploy", "--help"]).stdout
    assert "Exit codes:" in deploy and "64" in deploy
