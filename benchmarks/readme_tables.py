"""Write the READMEs' parity tables and serving figures from the committed results files.

A README marks where a table goes:

    <!-- parity table: benchmarks/results/mnist_parity.json -->
    ... (written by this script) ...
    <!-- end of parity table -->

and this script fills the space between from that file (written by `make project=<name> bench`, which exports
the model it trained): the commit and preset it was measured at, then parity.md's table. Without the file, it
says how to measure it. `<!-- serving summary: ... -->` and `<!-- serving goals: ... -->` (ended by
`<!-- end of serving summary -->`, `<!-- end of serving goals -->`) take the serving benchmark's paragraph and
goals table (benchmarks/serving_summary.py). `make bench` and `make bench-serving` run it after the benchmark;
`--check` exits 1 where a README differs from what it would write.

Run: `python -m benchmarks.readme_tables [--check]`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from common.export.parity import table

from .serving_summary import goals_table, summary

REPO = Path(__file__).resolve().parent.parent
READMES = ("README.md", "projects/*/README.md", "serving/README.md")
BLOCK = re.compile(
    r"(<!-- (?P<kind>parity table|serving summary|serving goals): (?P<source>benchmarks/results/[\w.-]+\.json) -->\n)"
    r"(?P<body>.*?)(<!-- end of (?P=kind) -->)",
    re.S,
)


def readmes() -> list[Path]:
    """Every README that may hold a figure: the top one, each project's and the server's."""
    return sorted({path for pattern in READMES for path in REPO.glob(pattern)})


def body(kind: str, source: str, readme_dir: Path) -> str:
    """The lines between the markers of `kind` for the results file `source` (a path relative to the
    repository), in a README in `readme_dir`."""
    path = REPO / source
    if kind != "parity table":
        document = json.loads(path.read_text())
        return summary(document) if kind == "serving summary" else goals_table(document)
    project = path.stem.removesuffix("_parity")
    if not path.exists():
        return (
            f"Not yet measured at a recorded commit: `make project={project} bench` trains the default preset, "
            f"exports it and writes `{source}`, which this table is written from.\n"
        )
    document = json.loads(path.read_text())
    machine = document["machine"]
    dirty = " (with changes not committed)" if machine["dirty"] else ""
    load = machine["load_average"]
    heading = (
        f"Measured by `{machine['command']}` at commit {machine['commit'][:7]}{dirty}, {document['date']}: "
        f"the `{document['preset']}` preset's model, {document['examples']} test examples "
        f"({document['data_source']}); {machine['cores']}-core {machine['cpu']}, load average "
        f"{load['start'][0]} to {load['end'][0]} ([{path.name}]({os.path.relpath(path, readme_dir)})).\n"
    )
    return heading + "\n" + "\n".join(table(document)) + "\n"


def rewritten(readme: Path) -> str:
    """The text of `readme` with every marked block written from its results file."""
    return BLOCK.sub(lambda m: m[1] + body(m["kind"], m["source"], readme.parent) + m[5], readme.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 where a README differs, write nothing")
    args = parser.parse_args()
    stale = []
    for path in readmes():
        text = path.read_text()
        new = rewritten(path)
        if new != text:
            stale.append(path.relative_to(REPO))
            if not args.check:
                path.write_text(new)
    verb = "differ from their results" if args.check else "rewritten"
    print(f"{verb}: {', '.join(map(str, stale))}" if stale else "every table matches its results file")
    sys.exit(1 if args.check and stale else 0)


if __name__ == "__main__":
    main()
