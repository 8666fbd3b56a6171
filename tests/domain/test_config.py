"""Configuration validation: each bad value is refused with a message naming it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from greenapi.domain.config import (
    ConfigError,
    Settings,
    instance_config,
    parse_instances,
    parse_settings,
    plan_shards,
    settings_schema,
    settings_table,
)

DOCS = Path(__file__).parents[2] / "docs" / "configuration.md"


def test_instances_default_to_green_api_default():
    assert parse_instances(None) == ["green_api_default"]


def test_instances_list_is_parsed():
    assert parse_instances('["a", "b.c-1"]') == ["a", "b.c-1"]


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ("[", "is not valid JSON"),
        ('"green_api_default"', "must be a non-empty JSON list"),
        ("[]", "must be a non-empty JSON list"),
        ("[1]", "invalid connection id: 1"),
        ('["a", "a"]', "lists connection id 'a' twice"),
        ('["white space"]', "invalid connection id: 'white space'"),
    ],
)
def test_bad_instances_are_named(raw, named):
    with pytest.raises(ConfigError, match="green_api_instances") as err:
        parse_instances(raw)
    assert named in str(err.value)


def test_settings_defaults():
    assert parse_settings(None) == Settings()
    assert parse_settings('{"message_timezone": "UTC"}').message_timezone == "UTC"


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ('{"colour": 1}', "unknown key(s) ['colour']"),
        ('{"message_timezone": "Mars/Olympus"}', "message_timezone is not a known IANA timezone: 'Mars/Olympus'"),
        ('{"max_concurrency": 0}', "max_concurrency must be an integer from 1 to 1000, got 0"),
        ("[1]", "must be a JSON object"),
        # a bool is not a number, nor a number a bool; an integer is not 8.0; a string is not a number
        ('{"reboot_on_yellow_card": 1}', "green_api_settings.reboot_on_yellow_card must be true or false, got 1"),
        ('{"max_concurrency": true}', "green_api_settings.max_concurrency must be an integer from 1 to 1000, got True"),
        ('{"max_concurrency": 8.0}', "green_api_settings.max_concurrency must be an integer from 1 to 1000, got 8.0"),
        ('{"max_concurrency": "8"}', "green_api_settings.max_concurrency must be an integer from 1 to 1000, got '8'"),
        ('{"reminder_minutes": true}', "green_api_settings.reminder_minutes must be a number above 0 to 10080, got True"),
        ('{"reminder_minutes": NaN}', "green_api_settings.reminder_minutes must be a number above 0 to 10080, got nan"),
        ('{"settle_minutes": 241}', "green_api_settings.settle_minutes must be a number from 0 to 240, got 241"),
        ('{"smtp_conn_id": null}', "green_api_settings.smtp_conn_id must be a connection id, got None"),
        ('{"alert_senders": "green_api_b"}', "green_api_settings.alert_senders must be a list of connection ids, got 'green_api_b'"),
        ('{"message_timezone": 1}', "green_api_settings.message_timezone must be an IANA timezone name such as 'Europe/Paris', got 1"),
    ],
)
def test_bad_settings_are_named(raw, named):
    with pytest.raises(ConfigError) as err:
        parse_settings(raw)
    assert named in str(err.value)


def test_instance_config_reads_prefixed_extras_and_defaults():
    cfg = instance_config("c", "https://7105.api.greenapi.com/", "1101", "tok", {"extra__green_api__state_timeout": "3"})
    assert (cfg.api_url, cfg.instance_id, cfg.state_timeout, cfg.reboot_timeout) == (
        "https://7105.api.greenapi.com", "1101", 3.0, 30.0,
    )
    assert cfg.dashboard_url is None  # the tasks link to the dashboard in the Airflow UI


@pytest.mark.parametrize(
    ("extra", "link"),
    [
        ({"dashboard_url": "https://ops.example.org/green"}, "https://ops.example.org/green"),
        ({"extra__green_api__dashboard_url": " http://h:8080/x "}, "http://h:8080/x"),
        ({"dashboard_url": ""}, None),
        ({}, None),
    ],
)
def test_dashboard_url_comes_from_the_extra_when_set(extra, link):
    assert instance_config("c", "https://7105.api.greenapi.com", "1101", "tok", extra).dashboard_url == link


@pytest.mark.parametrize("bad", ["ops.example.org", "javascript:alert(1)", 42])
def test_bad_dashboard_url_is_named(bad):
    with pytest.raises(ConfigError) as err:
        instance_config("c", "https://7105.api.greenapi.com", "1101", "tok", {"dashboard_url": bad})
    assert str(err.value).startswith("Connection c: extra dashboard_url must be an http(s) address")
    assert str(err.value).endswith(f"got {bad!r}")


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ('{"failure_threshold": 0}', "green_api_settings.failure_threshold must be an integer from 1 to 100, got 0"),
        ('{"reminder_minutes": -5}', "green_api_settings.reminder_minutes must be a number above 0 to 10080, got -5"),
        ('{"language": "de"}', "green_api_settings.language must be 'fr' or 'en', got 'de'"),
        ('{"alert_senders": ["ok", "no way"]}', "green_api_settings.alert_senders must be a list of connection ids"),
        ('{"fallback_chat_ids": ["+336"]}', "green_api_settings.fallback_chat_ids must be a list of chat ids"),
        ('{"reboot_daily_cap": 2.5}', "green_api_settings.reboot_daily_cap must be an integer"),
        ('{"reboot_on_yellow_card": "yes"}', "reboot_on_yellow_card must be true or false, got 'yes'"),
    ],
)
def test_bad_alerting_settings_are_named(raw, named):
    with pytest.raises(ConfigError) as err:
        parse_settings(raw)
    assert named in str(err.value)


def test_every_setting_has_a_default():
    settings = parse_settings("{}")
    assert (settings.failure_threshold, settings.reminder_minutes, settings.escalation_minutes) == (1, 60, 15)
    assert (settings.reboot_cooldown_minutes, settings.reboot_daily_cap, settings.settle_minutes) == (30, 3, 10)


@pytest.mark.parametrize(("count", "per_task", "sizes"), [
    (1, 100, [1]),
    (100, 100, [100]),
    (101, 100, [50, 51]),
    (1000, 100, [100] * 10),
    (1000, 300, [250] * 4),
    (7, 3, [2, 2, 3]),
])  # fmt: skip
def test_instances_are_split_into_balanced_check_tasks_in_order(count, per_task, sizes):
    ids = [f"green_api_{n}" for n in range(count)]
    shards = plan_shards(json.dumps(ids), json.dumps({"instances_per_check_task": per_task}))
    assert [len(s) for s in shards] == sizes
    assert [c for s in shards for c in s] == ids


def test_split_refuses_a_bad_task_size_by_name():
    with pytest.raises(ConfigError, match="instances_per_check_task must be an integer from 1 to 10000, got 0"):
        plan_shards('["green_api_default"]', '{"instances_per_check_task": 0}')


def test_unknown_keys_are_all_named_before_any_bad_value_with_the_known_ones():
    with pytest.raises(ConfigError) as err:
        parse_settings('{"zeta": 1, "colour": 2, "max_concurrency": 0}')
    assert str(err.value).startswith("Variable green_api_settings has unknown key(s) ['colour', 'zeta']; known keys: [")
    assert "'max_concurrency'" in str(err.value) and "'reboot_on_yellow_card'" in str(err.value)


def test_settings_are_frozen_and_keep_lists_as_tuples():
    settings = parse_settings({"alert_senders": ["green_api_b"], "fallback_chat_ids": ["33612345678@c.us"]})
    assert (settings.alert_senders, settings.fallback_chat_ids) == (("green_api_b",), ("33612345678@c.us",))
    with pytest.raises(ValueError, match="frozen"):
        settings.max_concurrency = 1
    assert hash(settings) == hash(parse_settings(settings.model_dump()))


def test_defaults_are_within_their_own_bounds():
    assert Settings.model_validate(Settings().model_dump()) == Settings()
    jsonschema.validate(json.loads(json.dumps(Settings().model_dump())), Settings.model_json_schema())


@pytest.mark.parametrize(
    "bad",
    [{"colour": 1}, {"reboot_on_yellow_card": 1}, {"max_concurrency": 0}, {"reboot_daily_cap": 2.5},
     {"reminder_minutes": 0}, {"language": "de"}, {"alert_senders": ["no way"]}, {"fallback_chat_ids": ["+336"]}],
)
def test_the_json_schema_refuses_what_parse_settings_refuses(bad):
    schema = Settings.model_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    with pytest.raises(ConfigError):
        parse_settings(bad)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema, cls=jsonschema.Draft202012Validator)


def test_docs_show_the_settings_table_as_generated():
    # Regenerate with: python -m greenapi.domain.config --table
    table = re.search(r"^## Settings\n.*?\n(\| Key \|.*?)\n\n", DOCS.read_text(), re.S | re.M)
    assert table and table.group(1) == settings_table()


def test_docs_show_the_json_schema_as_generated():
    # Regenerate with: python -m greenapi.domain.config --schema
    block = re.search(r"^### JSON Schema of green_api_settings\n.*?```json\n(.*?)```", DOCS.read_text(), re.S | re.M)
    assert block and block.group(1) == settings_schema() + "\n"
    assert json.loads(block.group(1)) == Settings.model_json_schema()


def test_the_shards_a_check_task_cuts_for_itself_cover_each_instance_once():
    from greenapi.domain.config import instances_digest, shard_of

    for count in (1, 7, 250, 1001):
        ids = [f"green_api_{n}" for n in range(count)]
        for shards in {1, 2, 4, max(1, count // 100)}:
            parts = [shard_of(ids, k, shards) for k in range(shards)]
            assert [i for part in parts for i in part] == ids
            assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert instances_digest(["a", "b"]) != instances_digest(["b", "a"]) != instances_digest(["a"])
    assert len(instances_digest([f"x{n}" for n in range(1000)])) == 16


def test_an_instance_is_named_by_its_description_or_by_its_extra_name():
    """A task under the scheduler gets no description (Airflow's execution API leaves it out): the
    extra "name" names the instance there, and the description wins where both are given."""
    url = "https://7105.api.greenapi.com"
    assert instance_config("c", url, "1101", "tok", {"name": " Shop Paris "}).name == "Shop Paris"
    assert instance_config("c", url, "1101", "tok", {"name": "x"}, "Shop Lyon").name == "Shop Lyon"
    assert instance_config("c", url, "1101", "tok", {}).name is None
