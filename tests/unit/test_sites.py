"""The measurement-site table: parsed with errors that name the line, upstream neighbours exact."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from citystream.cli import main
from citystream.simulator import CitySimulator, size_for_rate
from citystream.simulator.traffic import site_table
from geo.zones import ZoneIndex
from processors.traffic.sites import InvalidSiteTableError, load_sites, parse_sites
from streams.settings import DEFAULT_SITES_FILE, DEFAULT_ZONES_FILE

HEADER = "sensor_id,road_segment,direction,position_m,lane\n"


def test_the_upstream_neighbour_is_the_nearest_detector_before_it_same_lane_first() -> None:
    table = parse_sites(
        HEADER
        + "# a comment line\n"
        + "C1,main,north,1000,1\n"
        + "A1,main,north,0,1\n"
        + "B2,main,north,480.5,2\n"
        + "B1,main,north,480.5,1\n"
        + "C3,main,north,1000,3\n"
        + "S1,main,south,500,1\n"
        + "X1,side,north,700,\n"
    )
    assert len(table) == 7
    upstream = {sid: (table.upstream(sid).sensor_id if table.upstream(sid) else None) for sid in table.sites}
    assert upstream == {
        "A1": None,
        "B1": "A1",  # no lane 1 closer, and A1 is the only one before
        "B2": "A1",
        "C1": "B1",  # same lane at the nearest position
        "C3": "B1",  # no lane 3 there: the lowest id
        "S1": None,  # another direction is another road
        "X1": None,
    }
    assert table.site("X1").lane is None  # type: ignore[union-attr]
    assert table.site("nobody") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty; the first line must be sensor_id,road_segment,direction,position_m,lane"),
        ("id,segment\nA,b\n", "site table:1: header is id,segment; expected sensor_id,"),
        (HEADER + "A1,main,north,0\n", "site table:2: 4 fields; expected 5"),
        (HEADER + "A 1,main,north,0,1\n", "site table:2: sensor_id 'A 1' is not a detector id"),
        (HEADER + "A1,,north,0,1\n", "site table:2: road_segment must be 1 to 64 characters"),
        (HEADER + "A1,main,nord est,0,1\n", "site table:2: direction 'nord est' must be"),
        (HEADER + "A1,main,north,zero,1\n", "site table:2: position_m 'zero' is not a number of metres"),
        (HEADER + "A1,main,north,-5,1\n", "site table:2: position_m '-5' must be 0 to 1000000 metres"),
        (HEADER + "A1,main,north,nan,1\n", "site table:2: position_m 'nan' must be"),
        (HEADER + "A1,main,north,0,17\n", "site table:2: lane '17' must be a whole number 1 to 16, or empty"),
        (HEADER + "A1,main,north,0,1\nA1,main,north,5,1\n", "site table:3: detector 'A1' is also on line 2"),
        (HEADER + "A1,main,north,0,1\nA2,main,north,0,1\n", "site table:3: detector 'A2' has the same segment"),
    ],
)
def test_a_bad_table_is_refused_naming_the_line_and_the_fix(text: str, message: str) -> None:
    with pytest.raises(InvalidSiteTableError) as error:
        parse_sites(text)
    assert message in str(error.value)


def test_a_missing_file_says_which_setting_to_fix(tmp_path: Path) -> None:
    with pytest.raises(InvalidSiteTableError, match=r"unreadable .*: set CITY_SITES_FILE"):
        load_sites(tmp_path / "nope.csv")


def test_the_shipped_table_is_the_simulators_and_lists_every_detector_it_runs() -> None:
    assert DEFAULT_SITES_FILE.read_text() == site_table(), "regenerate geo/data/binhaiwan_sites.csv with site_table()"
    table = load_sites(DEFAULT_SITES_FILE)
    zones = ZoneIndex.from_file(DEFAULT_ZONES_FILE)
    for rate in (24.0, 200.0):  # the default fleet and the demo's rate
        sim = CitySimulator(zones, seed=7, start=datetime.now(UTC), sensors=size_for_rate(rate))
        detectors = {d.sensor_id: d for d in sim._generators[0].detectors}  # type: ignore[attr-defined]
        assert detectors.keys() <= table.sites.keys()
        for sid, det in detectors.items():
            upstream = table.upstream(sid)
            assert (upstream is None) == (det.station == 0)
            if upstream is not None:
                assert upstream.sensor_id in detectors and upstream.lane == det.lane


def test_the_sites_command_checks_a_table_and_names_the_bad_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sites", str(DEFAULT_SITES_FILE)]) == 0
    assert "660 detectors on 10 segment directions, 638 with an upstream neighbour" in capsys.readouterr().out
    bad = tmp_path / "sites.csv"
    bad.write_text(HEADER + "A1,main,north,0,1\nA1,main,north,5,1\n")
    assert main(["sites", str(bad)]) == 2
    assert f"citystream sites: {bad}:3: detector 'A1' is also on line 2" in capsys.readouterr().err
