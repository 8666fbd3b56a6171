"""What an import or a removal changes (greenapi.instances.plan): pure, no Airflow. The list keeps
every entry already there, in its order; a second import changes nothing, also through the REST
API, which never shows a token."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from greenapi.domain.config import ConfigError
from greenapi.instances.plan import (
    DIGEST_EXTRA,
    HIDDEN,
    ConnFields,
    listing,
    merge_list,
    plan_add,
    plan_remove,
)
from greenapi.instances.source import InstanceRow, InstancesError

TYPE = "green_api_test_type"  # any name: the plan is given the hook's
URL = "https://7105.api.greenapi.com"
PARTNER = {"partner": "green_api_partner", "type": "whatsapp"}


def row(n: int, token: str = "tok", **changes: object) -> InstanceRow:
    fields: dict[str, object] = {"line": n + 1, "conn_id": f"green_api_11010000{n:02d}", "instance_id": f"11010000{n:02d}",
                                 "api_url": URL, "token": token, "name": f"Shop {n}",
                                 "extra": {"expected_settings": {"incomingWebhook": "yes"}},
                                 "place": f"instances.csv line {n + 1}",
                                 "places": {"id": f"instances.csv line {n + 1}, column id"}}  # fmt: skip
    return InstanceRow(**{**fields, **changes})  # type: ignore[arg-type]


def as_stored(conns: tuple[ConnFields, ...]) -> dict[str, ConnFields]:
    return {c.conn_id: c for c in conns}


def as_the_api_shows(conn: ConnFields) -> ConnFields:
    """The REST API's view: the password and secret-looking extras hidden."""
    extra = {k: ({kk: HIDDEN if "token" in kk.lower() else vv for kk, vv in v.items()} if isinstance(v, dict) else v)
             for k, v in conn.extra.items()}  # fmt: skip
    return ConnFields(conn.conn_id, conn.conn_type, conn.host, conn.login, HIDDEN, conn.description, extra)


def test_the_first_import_adds_every_connection_and_keeps_the_list_and_its_order():
    rows = [row(1), row(2)]
    existing = json.dumps(["green_api_default", PARTNER, "green_api_other"])
    plan = plan_add(rows, TYPE, {}, existing, "instances.csv")
    assert [c.conn_id for c in plan.writes] == ["green_api_1101000001", "green_api_1101000002"]
    assert plan.writes[0].password == "tok" and plan.writes[0].login == "1101000001"
    assert plan.writes[0].extra["expected_settings"] == {"incomingWebhook": "yes"} and DIGEST_EXTRA in plan.writes[0].extra
    assert json.loads(plan.variable or "") == ["green_api_default", PARTNER, "green_api_other",
                                               "green_api_1101000001", "green_api_1101000002"]  # fmt: skip
    assert plan.counts == {"added": 2, "updated": 0, "unchanged": 0, "listed": 2}
    assert plan.report == ("instances.csv: 2 instance(s): 2 added",
                           "Variable green_api_instances: 2 connection id(s) added (5 entries)")  # fmt: skip


@pytest.mark.parametrize("through_the_api", [False, True])
def test_a_second_import_of_the_same_file_changes_nothing(through_the_api):
    rows = [row(n) for n in range(1, 4)]
    first = plan_add(rows, TYPE, {}, None, "instances.csv")
    stored = as_stored(first.writes)
    if through_the_api:
        stored = {k: as_the_api_shows(c) for k, c in stored.items()}
    again = plan_add(rows, TYPE, stored, first.variable, "instances.csv")
    assert (again.writes, again.variable) == ((), None)
    assert again.report == ("instances.csv: 3 instance(s): 3 unchanged", "Variable green_api_instances: unchanged (3 entries)")


@pytest.mark.parametrize("through_the_api", [False, True])
def test_a_new_token_or_name_updates_only_that_connection(through_the_api):
    first = plan_add([row(1), row(2), row(3)], TYPE, {}, None, "instances.csv")
    stored = as_stored(first.writes)
    if through_the_api:
        stored = {k: as_the_api_shows(c) for k, c in stored.items()}
    again = plan_add([row(1, token="new"), row(2, name="Shop two"), row(3)], TYPE, stored, first.variable, "f.csv")
    assert [(c.conn_id, c.password, c.description) for c in again.writes] == [
        ("green_api_1101000001", "new", "Shop 1"), ("green_api_1101000002", "tok", "Shop two")]  # fmt: skip
    assert again.counts == {"added": 0, "updated": 2, "unchanged": 1, "listed": 0} and again.variable is None


def test_a_connection_changed_in_the_ui_or_unreadable_is_written_again():
    first = as_stored(plan_add([row(1), row(2)], TYPE, {}, None, "f.csv").writes)
    edited = replace(first["green_api_1101000001"], host="https://1103.api.greenapi.com")
    unreadable = ConnFields("green_api_1101000002", TYPE, URL, "1101000002", readable=False)
    again = plan_add([row(1), row(2)], TYPE, as_stored((edited, unreadable)), None, "f.csv")
    assert again.counts["updated"] == 2


def test_a_row_taking_another_kinds_connection_id_is_refused_by_line():
    postgres = ConnFields("green_api_db", "postgres", "localhost")
    with pytest.raises(InstancesError, match="instances.csv line 2: green_api_db is a connection of type postgres"):
        plan_add([row(1, conn_id="green_api_db")], TYPE, {"green_api_db": postgres}, None, "instances.csv")


def test_an_instance_another_connection_monitors_is_refused_by_line():
    default = ConnFields("green_api_default", TYPE, URL, "1101000001", "other")
    with pytest.raises(InstancesError, match="instances.csv line 2, column id: instance 1101000001 is connection "
                                             "green_api_default already: give the row conn_id green_api_default"):
        plan_add([row(1)], TYPE, {"green_api_default": default}, None, "instances.csv")


def test_without_the_variable_the_list_starts_from_green_api_default_when_it_exists():
    default = ConnFields("green_api_default", TYPE, URL, "1101000099", "t")
    plan = plan_add([row(1)], TYPE, {"green_api_default": default}, None, "f.csv")
    assert json.loads(plan.variable or "") == ["green_api_default", "green_api_1101000001"]
    assert json.loads(plan_add([row(1)], TYPE, {}, None, "f.csv").variable or "") == ["green_api_1101000001"]
    empty = plan_add([], TYPE, {}, None, "f.csv")
    assert (empty.writes, empty.variable, empty.report) == ((), None, (
        "f.csv: 0 instance(s): nothing", "Variable green_api_instances: unchanged (0 entries)"))  # fmt: skip


def test_a_broken_variable_is_named_and_nothing_is_merged_into_it():
    with pytest.raises(InstancesError, match="green_api_instances is not valid JSON.*fix or delete it"):
        plan_add([row(1)], TYPE, {}, "[green_api_default", "f.csv")


def test_merging_a_list_adds_what_it_lacks_and_keeps_the_rest():
    merged, added = merge_list(json.dumps(["mine", PARTNER]), ["green_api_default", {"partner": "green_api_partner"}])
    assert (merged, added) == (["mine", PARTNER, "green_api_default"], ["green_api_default"])
    with pytest.raises(ConfigError, match="merged instance list has an invalid connection id"):
        merge_list(None, ["white space"])


def test_remove_deletes_connections_by_id_or_idinstance_and_takes_them_out_of_the_list():
    stored = as_stored(plan_add([row(1), row(2), row(3)], TYPE, {}, None, "f.csv").writes)
    variable = json.dumps([PARTNER, "green_api_1101000001", "green_api_1101000002", "green_api_1101000003", "gone"])
    plan = plan_remove(["green_api_1101000001", "1101000002", "gone", "nothing"], TYPE, stored, variable)
    assert plan.deletes == ("green_api_1101000001", "green_api_1101000002")
    assert json.loads(plan.variable or "") == [PARTNER, "green_api_1101000003"]
    assert plan.report == ("3 removed: green_api_1101000001, green_api_1101000002, gone",
                           "1 not found (no such connection id, listed id or idInstance): nothing",
                           "Variable green_api_instances: 3 connection id(s) taken out (2 entries)")  # fmt: skip


def test_remove_refuses_another_kind_of_connection_and_an_empty_list():
    postgres = {"green_api_db": ConnFields("green_api_db", "postgres")}
    with pytest.raises(InstancesError, match="green_api_db is a connection of type postgres.*nothing removed"):
        plan_remove(["green_api_db"], TYPE, postgres, None)
    with pytest.raises(InstancesError, match="would leave Variable green_api_instances empty"):
        plan_remove(["a"], TYPE, {}, '["a"]')


def test_the_listing_shows_ids_names_and_hosts_never_a_token():
    stored = as_stored(plan_add([row(1), row(2)], TYPE, {}, None, "f.csv").writes)
    lines = listing(stored, json.dumps(["green_api_1101000001", PARTNER, "missing"]), TYPE)
    assert [line.split() for line in lines] == [
        ["id", "conn_id", "name", "api", "host", "checked"],
        ["1101000001", "green_api_1101000001", "Shop", "1", "7105.api.greenapi.com", "yes"],
        ["partner", "green_api_partner", "every", "whatsapp", "instance", "(no", "such", "connection)", "yes"],
        ["?", "missing", "(no", "such", "connection)", "-", "yes"],
        ["1101000002", "green_api_1101000002", "Shop", "2", "7105.api.greenapi.com", "no"],
    ]
    assert all("tok" not in line for line in lines)


def test_a_connection_of_the_former_type_name_is_one_of_ours():
    """An Airflow not restarted since the type became ``greenapi`` still holds ``green_api``
    connections: the CLI reads them as its own, so a second import changes nothing."""
    from greenapi.instances.__main__ import _renamed

    first = plan_add([row(1)], "greenapi", {}, None, "instances.csv")
    stored = {c.conn_id: replace(c, conn_type="green_api") for c in first.writes}
    again = plan_add([row(1)], "greenapi", _renamed(stored, "greenapi"), first.variable, "instances.csv")
    assert again.writes == () and again.counts["unchanged"] == 1, again.report
