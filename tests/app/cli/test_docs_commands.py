"""Every ``snn-explorer ...`` line of README.md and docs/ parses with the real argument parser.

Command lines are taken from fenced code blocks and from inline code spans. Documentation
notation is read as a person would: ``[--json]`` is an option one may add (it is parsed with it),
``a|b`` offers alternatives (the first is parsed), ``FILE...`` repeats, ``$(...)`` is a value.
"""

from __future__ import annotations

import pathlib
import re
import shlex

import pytest

from app.cli import build_parser

ROOT = pathlib.Path(__file__).resolve().parents[3]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _code_lines(text: str) -> list[str]:
    lines = []
    in_block = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_block = not in_block
            continue
        if in_block:
            if lines and lines[-1].endswith("\\"):
                lines[-1] = lines[-1][:-1] + " " + line.strip()  # a continued line
            else:
                lines.append(line)
        else:
            # a command named in prose (no options) is a name, not a line to paste
            spans = re.findall(r"`([^`]+)`", line.replace("\\|", "|"))
            lines += [span for span in spans if " --" in span]
    return lines


# metavars a reader replaces with a value of the right type
PLACEHOLDERS = {
    "N": "2",
    "S": "1",
    "T": "10",
    "J": "2",
    "K": "5",
    "P": "0.5",
    "NAME": "csnn",
    "COMMAND": "train",
}


def _normalise(line: str) -> list[str] | None:
    line = line.strip()
    if line.startswith("$ "):
        line = line[2:]
    if not line.startswith("snn-explorer"):
        return None
    line = re.sub(r"\$\([^)]*\)", "VALUE", line)  # a command substitution stands for a value
    line = re.sub(r"\s+#.*$", "", line)  # a trailing comment
    line = line.replace("...", "")
    line = re.sub(r"\[([^\[\]]*)\]", r"\1", line)  # an optional part: parse it too
    tokens = []
    for tok in shlex.split(line):
        if "|" in tok and not tok.startswith(("csv:", "folder:", "fsdd:", "http")):
            tok = tok.split("|")[0]
        tokens.append(PLACEHOLDERS.get(tok, tok))
    return tokens[1:]


def _commands() -> list[tuple[str, list[str]]]:
    out = []
    for path in DOCS:
        for line in _code_lines(path.read_text(encoding="utf-8")):
            argv = _normalise(line)
            if argv is not None:
                out.append((f"{path.relative_to(ROOT)}: {line.strip()}", argv))
    return out


COMMANDS = _commands()


def test_the_docs_show_commands():
    assert len(COMMANDS) > 20, "README and docs should show how to run the app"
    readme = [c for c in COMMANDS if c[0].startswith("README.md")]
    assert any(argv[:1] == ["train"] for _where, argv in readme)


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[c[0][:90] for c in COMMANDS])
def test_documented_command_parses(where, argv, capsys):
    parser = build_parser()
    if "--help" in argv or "-h" in argv or "--version" in argv:
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(argv)
        assert exc.value.code == 0, where
        return
    try:
        parser.parse_args(argv)
    except SystemExit as exc:  # argparse's way of refusing
        err = capsys.readouterr().err.strip()
        pytest.fail(f"{where}\n  -> {err or exc}")
