"""The fleet view (issue 25): counts by status and host, search, filters and pages, in the JSON
API and on the page; and the figures read from aggregates equal to what the raw rows give."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from greenapi.dashboard.queries import DashboardStore, FleetFilter
from tests.conftest import require_env

STATUSES = ["healthy"] * 6 + ["unhealthy", "critical_failure", "rate_limited", "rebooted"]


def log_fleet(db: psycopg.Connection[Any], instances: int, minutes_ago: float = 3) -> None:
    """One check per instance 11000000000 + n, its status by n % 10 (STATUSES), its host by n % 3,
    named "Shop n"; in one statement, as a run's log task writes them."""
    db.execute(
        "INSERT INTO green_api_health_logs (checked_at, status, state_instance, response_time_ms, instance_id,"
        " connection_id, dag_id, run_id, api_host, instance_name)"
        " SELECT now() - make_interval(mins => %s), (%s::text[])[1 + n %% 10], 'authorized', 100 + n,"
        " (11000000000 + n)::text, 'conn_' || n, 'green_api_health_check', 'r', (7100 + n %% 3) || '.api.greenapi.com',"
        " 'Shop ' || n FROM generate_series(1, %s) AS n",
        (minutes_ago, STATUSES, instances),
    )


def test_the_api_pages_the_fleet_with_its_total_and_counts(get, db):
    log_fleet(db, 120)
    page = get("/green-api/api/instances").json()
    assert (page["total"], page["offset"], page["limit"], len(page["instances"]), page["next_offset"]) == (
        120, 0, 50, 50, 50)  # 50 by default
    first = get("/green-api/api/instances?limit=100").json()
    assert (len(first["instances"]), first["next_offset"]) == (100, 100)
    assert first["instances"][:50] == page["instances"]
    rest = get("/green-api/api/instances?offset=100&limit=100").json()
    assert (len(rest["instances"]), rest["next_offset"]) == (20, None)
    ids = [i["instance_id"] for i in first["instances"] + rest["instances"]]
    assert len(set(ids)) == 120  # every instance once over the pages
    # Problems first, the worst first; then by instance id.
    rank = {"critical_failure": 0, "unhealthy": 1, "rate_limited": 2, "rebooted": 3, "healthy": 4}
    shown = [(rank[i["status"]], i["instance_id"]) for i in first["instances"] + rest["instances"]]
    assert shown == sorted(shown)
    assert first["counts"]["status"] == {"healthy": 72, "unhealthy": 12, "critical_failure": 12, "rate_limited": 12,
                                         "rebooted": 12}  # fmt: skip
    assert first["counts"]["host"] == {"7100.api.greenapi.com": 40, "7101.api.greenapi.com": 40,
                                       "7102.api.greenapi.com": 40}  # fmt: skip
    assert sum(first["counts"]["host_problem"].values()) == 48
    row = next(i for i in first["instances"] + rest["instances"] if i["instance_id"] == "11000000011")
    assert (row["instance_name"], row["connection_id"], row["api_host"]) == ("Shop 11", "conn_11", "7102.api.greenapi.com")


def test_an_instance_deleted_from_its_partner_account_shows_deleted_not_failing(get, db):
    log_fleet(db, 20)
    db.execute("INSERT INTO green_api_partner_instances (instance_id, partner_connection_id, name, type_instance,"
               " deleted, time_deleted) VALUES ('11000000007', 'green_api_partner', 'Gone shop', 'whatsapp', true,"
               " '2026-12-04 10:30+00'), ('11000000008', 'green_api_partner', 'Live shop', 'whatsapp', false, null)")
    page = get("/green-api/api/instances?limit=100").json()
    rows = {i["instance_id"]: i for i in page["instances"]}
    # 11000000007's last check failed (critical_failure), but it is gone on purpose: deleted, listed last.
    assert rows["11000000007"]["status"] == "deleted" and rows["11000000007"]["deleted_at"].startswith("2026-12-04T10:30")
    assert page["instances"][-1]["instance_id"] == "11000000007"
    assert rows["11000000008"]["instance_name"] == "Live shop"  # the account's name for it
    assert (page["counts"]["status"]["deleted"], page["counts"]["status"]["critical_failure"]) == (1, 1)  # 17 still
    problems = get("/green-api/api/instances?status=problem&limit=100").json()
    assert "11000000007" not in {i["instance_id"] for i in problems["instances"]}
    html = get("/green-api/?fleet_status=deleted").text
    assert 'data-instance="11000000007"' in html and 'data-field="deleted_at"' in html


def fleet_matching(q: str = "", status: str | None = None, host: str | None = None) -> set[str]:
    """What log_fleet's instances a search and filters should find, worked out here."""
    found = set()
    for n in range(1, 121):
        instance, conn, name = str(11000000000 + n), f"conn_{n}", f"Shop {n}"
        st, at = STATUSES[n % 10], f"{7100 + n % 3}.api.greenapi.com"
        if q and not any(q.lower() in text.lower() for text in (instance, conn, name)):
            continue
        if (status == "problem" and st == "healthy") or (status not in (None, "problem") and st != status):
            continue
        if host is None or host == at:
            found.add(instance)
    return found


@pytest.mark.parametrize(("query", "expected"), [
    ("q=000000011", fleet_matching("000000011")),  # part of an id
    ("q=CONN_7", fleet_matching("conn_7")),  # a connection id, any case
    ("q=shop%20119", {"11000000119"}),  # the name
    ("q=100%25", set()),  # % is a character searched for, not a wildcard
    ("q=shop_1", set()),  # and so is _
    ("status=critical_failure&host=7101.api.greenapi.com", fleet_matching("", "critical_failure", "7101.api.greenapi.com")),
    ("status=problem&q=shop%2011", fleet_matching("shop 11", "problem")),
])
def test_the_api_searches_and_filters_the_fleet(get, db, query, expected):
    log_fleet(db, 120)
    body = get(f"/green-api/api/instances?{query}&limit=1000").json()
    assert {i["instance_id"] for i in body["instances"]} == expected
    assert body["total"] == len(expected)
    assert len(expected) > 0 or "q=" in query


@pytest.mark.parametrize(("query", "named"), [
    ("limit=0", "limit must be between 1 and 1000"),
    ("limit=5000", "limit must be between 1 and 1000"),
    ("offset=-1", "offset must be between 0"),
    ("status=broken", "status must be one of healthy, unhealthy, critical_failure, rate_limited, rebooted, deleted, problem"),
    ("q=" + "x" * 101, "q must be at most 100 characters"),
])
def test_bad_fleet_filters_get_400_naming_them(get, query, named):
    response = get(f"/green-api/api/instances?{query}")
    assert response.status_code == 400 and named in response.json()["detail"]


def test_the_page_shows_counts_search_and_one_page_of_the_fleet(get, db):
    log_fleet(db, 120)
    page = get("/green-api/").text
    assert len(re.findall(r'<tr data-instance="\d+">', page)) == 50
    assert re.search(r'id="fleet-shown">instances 1–50 of 120</span>', page)
    assert "page 1 of 3" in page
    counts = re.search(r'id="fleet-counts">(.*?)</p>', page, re.S).group(1)
    assert re.search(r'href="\?fleet_status=critical_failure#instances" data-status="critical_failure">.*?</span> 12', counts)
    assert 'id="problems-link">all 48 not healthy</a>' in counts
    hosts = re.search(r'id="host-counts">(.*?)</p>', page, re.S).group(1)
    assert re.search(r'data-host="7101\.api\.greenapi\.com">7101\.api\.greenapi\.com</a> 40 '
                     r'<span class="incident">\(16 not healthy\)</span>', hosts)
    # The 48 problems first, then the healthy instances.
    badges = re.findall(r'data-field="status"><span class="badge (\w+)"', page)
    assert len(badges) == 50 and "healthy" not in badges[:48] and badges[48:] == ["healthy", "healthy"]
    third = get("/green-api/?fleet_page=3").text
    assert re.search(r'id="fleet-shown">instances 101–120 of 120</span>', third)
    assert len(re.findall(r'<tr data-instance="\d+">', third)) == 20
    found = get("/green-api/?q=Shop%20119").text
    assert re.findall(r'<tr data-instance="(\d+)">', found) == ["11000000119"]
    assert 'value="Shop 119"' in found
    assert "No instance matches." in get("/green-api/?q=nobody").text


def test_figures_from_the_aggregates_equal_the_raw_rows(db):
    """p95 and mean per instance, the fleet's 24 h series and queue chart, on random history with
    failures, reboots, queue readings and gaps, equal what the raw rows give over the same windows."""
    rng = random.Random(25)
    now = datetime.now(UTC)
    rows = []
    for instance in ("1", "2", "3"):
        for n in range(400):
            if instance == "3" and 100 < n < 250:
                continue  # a gap
            status = rng.choice(["healthy"] * 5 + ["unhealthy", "critical_failure", "rebooted"])
            rows.append((now - timedelta(minutes=5 * n + rng.uniform(0, 4)), status,
                         None if status == "critical_failure" else rng.randint(40, 4000), status == "rebooted",
                         rng.random() < 0.1, instance, rng.choice([None, None, rng.randint(0, 300)])))
    with db.cursor() as cur, cur.copy("COPY green_api_health_logs (checked_at, status, response_time_ms,"
                                      " reboot_triggered, in_maintenance_window, instance_id, queue_length) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    store = DashboardStore(require_env("GREEN_API_DB_URL"))
    try:
        since_hour = (now - timedelta(hours=24)).replace(minute=0, second=0, microsecond=0)
        fleet = {i["instance_id"]: i for i in store.fleet(FleetFilter(), now)["instances"]}
        raw = {r[0]: r[1:] for r in db.execute(
            "SELECT instance_id, round(avg(response_time_ms)),"
            " round(percentile_cont(0.95) WITHIN GROUP (ORDER BY response_time_ms)::numeric)"
            " FROM green_api_health_logs WHERE checked_at >= %s AND response_time_ms IS NOT NULL GROUP BY 1",
            (since_hour,))}
        assert {k: fleet[k]["p95_ms_24h"] for k in fleet} == {k: v[1] for k, v in raw.items()}
        assert len(raw) == 3
        bucket = "date_bin('5 minutes', checked_at, TIMESTAMPTZ '2000-01-01 00:00+00')"
        since = now - timedelta(hours=24)
        first = f"{bucket.replace('checked_at', '%(since)s')}"
        series = [(b["at"], b["mean_ms"], b["max_ms"], b["checks"], b["failing"])
                  for b in store.series("24h", now)["buckets"]]
        assert series == db.execute(
            f"SELECT {bucket}, avg(response_time_ms)::int, max(response_time_ms), count(*)::int,"  # noqa: S608
            " count(*) FILTER (WHERE status NOT IN ('healthy', 'rebooted') AND NOT in_maintenance_window)::int"
            f" FROM green_api_health_logs WHERE checked_at >= {first} GROUP BY 1 ORDER BY 1", {"since": since}
        ).fetchall()
        queue = [(b["at"], b["max_queue"], b["reads"]) for b in store.queue(now)["buckets"]]
        assert queue == db.execute(
            f"SELECT {bucket}, max(queue_length), count(*)::int FROM green_api_health_logs"  # noqa: S608
            f" WHERE queue_length IS NOT NULL AND checked_at >= {first} GROUP BY 1 ORDER BY 1", {"since": since}
        ).fetchall()
        assert len(series) >= 250 and len(queue) > 50
    finally:
        store.close()
