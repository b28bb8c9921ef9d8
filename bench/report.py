"""Writing a benchmark's results: `<name>.json` and `<name>.md` under an output directory, each atomically
(temp name, then rename within the directory), so a reader never sees a half-written file."""
import json
import os
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_results(out, name: str, report: dict, table: str) -> None:
    """`report` as `<name>.json` and the markdown `table` as `<name>.md` in `out` (made if missing)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / f"{name}.json", json.dumps(report, indent=2) + "\n")
    write_atomically(out / f"{name}.md", table)
