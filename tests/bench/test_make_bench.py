"""`make bench`'s suite, end to end in its quick mode: every section runs, the JSON and the
README table are written (loopback only; the browser section is left out, it has its own tests).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "benchmarks" / "suite.py"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def test_the_readme_has_the_section_make_bench_rewrites() -> None:
    text = (ROOT / "README.md").read_text()
    assert text.count(BEGIN) == 1
    assert text.count(END) == 1
    assert text.index(BEGIN) < text.index(END)


def test_quick_mode_writes_the_json_and_the_readme_table(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    before, after = "# falnb\n\nintro\n\n", "\n\n## Developing\n\nrest\n"
    readme.write_text(f"{before}{BEGIN}\nstale table\n{END}{after}")
    latest = tmp_path / "results" / "latest.json"

    options = ["--quick", "--no-browser", "--json", str(latest), "--readme", str(readme)]
    subprocess.run(
        [sys.executable, str(SUITE), *options],
        check=True,
        timeout=600,
        cwd=tmp_path,
    )

    report = json.loads(latest.read_text())
    assert report["quick"] is True
    assert report["machine"]["cores"] >= 1
    assert len(report["machine"]["load_average"]) == 3
    results = report["results"]
    expected = {"completion", "runs", "sweep", "realtime", "replay", "notebook", "import"}
    assert set(results) == expected
    completion = results["completion"]
    for name in ("falnb", "fal-client", "floor"):
        assert completion[name]["latency_p50_ms"] > 200  # the jobs last 0.2-0.5 s
        # Every client asked for the status at least once per job (the journal counted them).
        assert completion[name]["status_requests_per_job"] >= 1
    assert completion["falnb/floor"]["latency"] > 0
    assert results["runs"]["falnb/fal-client"] > 0
    assert results["sweep"]["falnb"]["wall_s"] > 0
    assert results["sweep"]["falnb/fal-client"] > 0
    assert results["realtime"]["falnb_per_s"] > 0
    assert results["realtime"]["bare_per_s"] > 0
    assert results["replay"]["requests"] == 0
    assert results["notebook"]["bytes_per_image"] > 1000
    assert results["import"]["import_and_load_ext_s"] > 0
    for section in results.values():
        assert "error" not in section
        assert set(section["load_average"]) == {"before", "after"}

    text = readme.read_text()
    assert text.startswith(before + BEGIN)
    assert text.endswith(END + after)
    assert "stale table" not in text
    table = text[text.index(BEGIN) : text.index(END)]
    assert "quick mode" in table
    assert "load average" in table
    assert report["machine"]["python"] in table
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert rows[0] == "| measure | falnb | beside it | ratio | goal |"
    measures = "\n".join(rows)
    for measure in ("completion latency", "status requests", "sequential `run`", "jobs of"):
        assert measure in measures
    for measure in ("round trips", "replay of", "notebook bytes", "import falnb"):
        assert measure in measures
    # Every goal is judged, as met or missed.
    goals = [row.rsplit("|", 2)[-2].strip() for row in rows[2:]]
    assert sum(bool(re.search(r": (met|\*\*missed\*\*)$", goal)) for goal in goals) == 6
