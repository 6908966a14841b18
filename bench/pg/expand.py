#!/usr/bin/env python3
"""Expands a pgbench script template: each `--@ include PATH` line, followed by
`--@ $N = EXPR` lines, becomes the statement in PATH (relative to the
repository root, comment lines dropped) with each $N replaced by its EXPR and a
closing `;`. So the bench runs statement files, not copies of them.

Usage: bench/pg/expand.py TEMPLATE > SCRIPT
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIRECTIVE = re.compile(r"^--@\s+(include\s+(?P<path>\S+)|\$(?P<n>\d+)\s*=\s*(?P<expr>.+))$")


def statement(path, args):
    lines = [l for l in (ROOT / path).read_text().splitlines() if not l.lstrip().startswith("--")]
    sql = "\n".join(lines).strip().rstrip(";")
    used = {int(n) for n in re.findall(r"\$(\d+)", sql)}
    if used != set(args):
        sys.exit(f"{path}: parameters {sorted(used)}, template gives {sorted(args)}")
    # Expressions go in as written: the template parenthesises where it must,
    # and the read's seat list ($2) is a comma-separated list of them.
    return re.sub(r"\$(\d+)", lambda m: args[int(m.group(1))], sql) + ";"


def expand(template):
    out, pending = [], None

    def flush():
        if pending:
            out.append(statement(*pending))

    for line in template.read_text().splitlines():
        m = DIRECTIVE.match(line.strip())
        if not m:
            out.append(line)
            continue
        if m.group("path"):
            flush()
            pending = (m.group("path"), {})
        elif pending is None:
            sys.exit(f"{template}: `{line}` before any include")
        else:
            pending[1][int(m.group("n"))] = m.group("expr").strip()
    flush()
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(expand(Path(sys.argv[1])))
