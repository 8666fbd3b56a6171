"""An instances file read and checked (greenapi.instances.source): pure, no Airflow. Every bad
row is refused by file, line and column, and no message shows a token."""

from __future__ import annotations

import pytest

from greenapi.instances.source import InstancesError, read_instances
from tests.instances.conftest import HEADER, csv_of, new_token

URL = "https://7105.api.greenapi.com"


def test_a_csv_row_becomes_its_connection(secret_dir):
    token = new_token()
    path = secret_dir / "instances.csv"
    path.write_text(csv_of([("1101000001", token, URL + "/", "Shop 1", {"incomingWebhook": "yes"})]) +
                    f"1101000002,{new_token()},{URL},,\n")  # fmt: skip
    first, second = read_instances(path)
    assert (first.conn_id, first.instance_id, first.api_url, first.token, first.name, first.line) == (
        "green_api_1101000001", "1101000001", URL, token, "Shop 1", 2)  # fmt: skip
    assert first.extra == {"expected_settings": {"incomingWebhook": "yes"}}
    assert (second.conn_id, second.name, second.extra) == ("green_api_1101000002", None, {})
    assert token not in repr(first)


def test_the_consoles_column_names_semicolons_comments_and_blank_lines_are_read(secret_dir):
    path = secret_dir / "instances.csv"
    path.write_text("idInstance;apiTokenInstance;apiUrl;conn_id;state_timeout\n\n# a comment\n"
                    f"1101000001;{new_token()};{URL};shop_one;15\n")  # fmt: skip
    [row] = read_instances(path)
    assert (row.conn_id, row.instance_id, row.extra, row.line) == ("shop_one", "1101000001", {"state_timeout": 15}, 4)


def test_a_yaml_list_reads_the_same_and_keeps_yes_and_digits_as_text(secret_dir):
    token = "1234567890"  # digits only: still text, not a number
    path = secret_dir / "instances.yaml"
    path.write_text(f"""# instances
- id: 1101000001
  token: {token}
  api_url: {URL}
  name: Shop 1
  expected_settings:
    incomingWebhook: yes
    delaySendMessagesMilliseconds: 500
- id: 1101000002
  token: {new_token()}
  api_url: {URL}
""")
    first, second = read_instances(path)
    assert (first.token, first.line, second.line) == (token, 2, 9)
    assert first.extra == {"expected_settings": {"incomingWebhook": "yes", "delaySendMessagesMilliseconds": 500}}


@pytest.mark.parametrize(("row", "said"), [
    ("1101000001,{token},ftp://x,Shop,", "line 3, column api_url: must be the instance's apiUrl such as "
                                         "'https://7105.api.greenapi.com', got 'ftp://x'"),
    ("11010abc,{token},{url},Shop,", "line 3, column id: must be the numeric idInstance, got '11010abc'"),
    ("1101000001,,{url},Shop,", "line 3, column token: is empty"),
    ("1101000001,to ken,{url},Shop,", "line 3, column token: contains characters a token never has"),
    ('1101000001,{token},{url},Shop,"{{""a"": null}}"',
     "line 3, column expected_settings: key 'a' must be text, a number or true/false, got null"),
    ("1101000001,{token},{url},Shop,{{not json", "line 3, column expected_settings: is not valid JSON"),
    ("1101000001,{token},{url},Shop,,extra cell", "line 3: 6 cells, but the header names 5 columns"),
    ("1101000001,{token}", "line 3: has no api_url"),
    # The columns shifted: the token where the URL goes is not shown.
    ("1101000001,https://7105.api.greenapi.com,{token},Shop,", "line 3, column api_url: must be the instance's "
                                                               "apiUrl such as 'https://7105.api.greenapi.com', got '***'"),
])  # fmt: skip
def test_a_bad_row_is_refused_by_line_and_column_without_its_token(secret_dir, row, said):
    token = new_token()
    path = secret_dir / "instances.csv"
    path.write_text(f"{HEADER}\n1101000009,{new_token()},{URL},Fine,\n{row.format(token=token, url=URL)}\n")
    with pytest.raises(InstancesError) as refused:
        read_instances(path)
    assert str(refused.value).startswith(f"{path} {said}"), str(refused.value)
    assert "TOKEN-SECRET" not in str(refused.value)


def test_a_token_long_enough_to_be_real_is_never_shown_even_unknown(secret_dir):
    """A file without a header: its first row is taken for one, and its token is not echoed."""
    token = "d75b3a66374942c5b3c019c698abc2067e151558acbd4123"
    path = secret_dir / "instances.csv"
    path.write_text(f"1101000001,{token},{URL}\n")
    with pytest.raises(InstancesError) as refused:
        read_instances(path)
    assert str(refused.value) == (f"{path} line 1: a column name is expected here (is the header row missing?): id, "
                                  "token, api_url, name, conn_id, expected_settings, dashboard_url, state_timeout, "
                                  "reboot_timeout, send_timeout (id, token, api_url required)")  # fmt: skip


@pytest.mark.parametrize(("rows", "said"), [
    ([("1101000001", "a"), ("1101000001", "b")], "line 3, column id: instance 1101000001 is already on line 2"),
])
def test_an_instance_twice_is_refused_by_line(secret_dir, rows, said):
    path = secret_dir / "instances.csv"
    path.write_text("id,token,api_url,conn_id\n" + "".join(f"{i},{new_token()},{URL},{c}\n" for i, c in rows))
    with pytest.raises(InstancesError, match=said):
        read_instances(path)


def test_a_connection_id_twice_is_refused_by_line(secret_dir):
    path = secret_dir / "instances.csv"
    path.write_text(f"id,token,api_url,conn_id\n1101000001,{new_token()},{URL},shop\n1101000002,{new_token()},{URL},shop\n")
    with pytest.raises(InstancesError, match="line 3, column conn_id: connection id shop is already on line 2"):
        read_instances(path)


@pytest.mark.parametrize(("text", "said"), [
    ("id,token\n", "line 1: the header has no column api_url"),
    ("id,token,api_url,tokn\n", "line 1: unknown column 'tokn'"),
    ("id,token,api_url,id\n", "line 1: column id is named twice"),
])  # fmt: skip
def test_a_bad_header_is_named(secret_dir, text, said):
    path = secret_dir / "instances.csv"
    path.write_text(text)
    with pytest.raises(InstancesError, match=said):
        read_instances(path)


@pytest.mark.parametrize(("text", "said"), [
    ("id: 1\n", "line 1: must be a list of instances"),
    ("- id: 1101000001\n  token: {token}\n  api_url: ftp://x\n", "line 3, key api_url: must be the instance's apiUrl"),
    ("- id: 1101000001\n  token: {token}\n", "line 1: has no api_url"),
    ("- id: 1101000001\n  tokn: {token}\n", "line 2: unknown column 'tokn'"),
    ("- id: 1101000001\n  token: [{token}]\n  api_url: x\n", "line 2, key token: must be a single value"),
    ("- id: [1101000001\n  token: {token}\n", "not valid YAML"),
])  # fmt: skip
def test_a_bad_yaml_item_is_named_by_its_line_and_key(secret_dir, text, said):
    token = new_token()
    path = secret_dir / "instances.yaml"
    path.write_text(text.format(token=token))
    with pytest.raises(InstancesError, match=said) as refused:
        read_instances(path)
    assert token not in str(refused.value)


def test_an_empty_file_has_no_instances_and_another_kind_of_file_is_refused(secret_dir):
    (secret_dir / "instances.csv").write_text(HEADER + "\n")
    (secret_dir / "instances.yaml").write_text("# none yet\n")
    assert read_instances(secret_dir / "instances.csv") == read_instances(secret_dir / "instances.yaml") == []
    with pytest.raises(InstancesError, match="ends in .csv, .yaml or .yml"):
        read_instances(secret_dir / "instances.json")
