"""The grid and the table of a sweep's results, failures in their places."""

from __future__ import annotations

import base64
import io
import sys
from collections.abc import Iterator

import pytest
from PIL import Image

from falnb import SyncClient
from falnb.local import LocalServer
from falnb.render_grid import grid_layout
from falnb.session import Session
from falnb.sweeps import Sweep, SweepJob, SweepResults, plan

IMAGE = {"image_size": {"width": 48, "height": 32}, "num_inference_steps": 2}


@pytest.fixture
def session(server: LocalServer) -> Iterator[Session]:
    with SyncClient(server.target) as client:
        yield Session(client)


@pytest.fixture
def results(session: Session) -> SweepResults:
    jobs = plan("local/text-to-image", IMAGE, {"prompt": ["a fox", "a wolf"], "seed": [1, 2, 3]})
    jobs[4] = SweepJob("local/fail", {"detail": "broke on purpose"}, jobs[4].labels)
    return Sweep(session, jobs, record="off").run()


def test_the_layout_puts_the_last_key_on_columns_and_outer_keys_in_tables() -> None:
    jobs = plan("e/a", {}, {"cfg": [1, 2], "prompt": ["x", "y"], "seed": [1, 2, 3]})
    layout = grid_layout(jobs)
    assert (layout.row_key, layout.column_key) == ("prompt", "seed")
    assert layout.columns == ["1", "2", "3"]
    assert [outer for outer, _ in layout.tables] == [{"cfg": "1"}, {"cfg": "2"}]
    assert layout.tables[1][1] == [[6, 7, 8], [9, 10, 11]]
    mapped = grid_layout([SweepJob("e/a", {"n": i}) for i in range(10)])
    assert mapped.tables[0][1] == [[0, 1, 2, 3, 4, 5, 6, 7], [8, 9]]


def test_the_grid_shows_each_image_and_the_failure_in_its_place(results: SweepResults) -> None:
    data, metadata = results._repr_mimebundle_()
    page = data["text/html"]
    assert page.count("<img ") == 5
    assert "<b>failed</b><br>broke on purpose" in page
    rows = page.split("<tr>")[1:]
    assert "prompt=a wolf" in rows[2]
    assert rows[2].index("<b>failed</b>") < rows[2].index("seed 3")  # column seed=2, in order
    assert metadata["falnb"]["sweep"] == {"jobs": 6, "keys": ["prompt", "seed"]}
    sheet = Image.open(io.BytesIO(base64.b64decode(data["image/jpeg"])))
    assert sheet.size[0] <= 1536
    assert "  local/fail prompt=a wolf · seed=2: failed" in data["text/plain"]


def test_the_table_has_a_row_per_job_and_falls_back_to_dicts_without_pandas(
    results: SweepResults, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = results.table()
    assert list(table.index) == list(range(6))
    assert list(table["status"]) == ["done"] * 4 + ["failed", "done"]
    assert table.loc[4, "error"] == "broke on purpose"
    assert table.loc[0, "seed"] == 1
    assert table.loc[0, "urls"]
    assert table.loc[0, "request_id"]
    monkeypatch.setitem(sys.modules, "pandas", None)
    rows = results.table()
    assert isinstance(rows, list)
    assert rows[4]["status"] == "failed"
    assert rows[1]["prompt"] == "a fox"
    assert rows[1]["seed"] == 2
