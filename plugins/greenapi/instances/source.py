"""An instances file, read and checked row by row before anything is written.

CSV: a header row naming the columns, then one instance per line (``,`` or ``;`` between cells)::

    id,token,api_url,name,expected_settings
    1101000001,<apiTokenInstance>,https://7105.api.greenapi.com,Shop 1,"{""incomingWebhook"": ""yes""}"

YAML: a list of mappings with the same keys, ``expected_settings`` a mapping. Each row is checked
as the hook will check its connection (greenapi.domain.config.instance_config). An error names the
file, the line and the column (the key, in YAML), and never shows a token: the file's tokens, and
anything long enough to be one, are replaced by ``***``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from greenapi.domain.config import FieldError, instance_config, is_conn_id

REQUIRED = ("id", "token", "api_url")
EXTRAS = ("expected_settings", "dashboard_url", "state_timeout", "reboot_timeout", "send_timeout")
COLUMNS = (*REQUIRED, "name", "conn_id", *EXTRAS)
# The Green API console's names of the same columns (any case).
ALIASES = {"idinstance": "id", "apitokeninstance": "token", "apiurl": "api_url"}
# The connection field a FieldError names -> the column that fills it.
_COLUMN_OF = {"host": "api_url", "login": "id", "password": "token", **{f"extra {k}": k for k in EXTRAS}}
CONN_ID_PREFIX = "green_api_"  # a row without conn_id: green_api_<id>
MAX_CONN_ID = 200  # the longest connection id Airflow's REST API takes
_SHOWN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]{0,39}")  # a column name, not data (a token)
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9]{32,}")  # Green API's tokens are 50 hexadecimal digits


class InstancesError(ValueError):
    """An import or a removal refused: the message says where and why, never with a token."""


@dataclass(frozen=True)
class InstanceRow:
    """One instance of the file, checked: what its Airflow connection holds (token out of repr)."""

    line: int
    conn_id: str
    instance_id: str
    api_url: str
    token: str = field(repr=False)
    name: str | None
    extra: Mapping[str, Any]  # the extras the row gives (expected_settings, dashboard_url, timeouts)
    place: str  # "instances.csv line 7"
    places: Mapping[str, str] = field(default_factory=dict)  # column -> "instances.csv line 7, column api_url"

    def at(self, column: str) -> str:
        """Where ``column`` of this row is (the row, when the file has no such column)."""
        return self.places.get(column, self.place)


@dataclass
class _Raw:
    """A row as the file has it: each column's value and where it is."""

    line: int
    place: str
    cells: dict[str, tuple[Any, str]]


def conceal(text: str, tokens: Sequence[str]) -> str:
    """``text`` without any of ``tokens``, nor anything that could be one (a long run of letters and digits)."""
    for token in sorted((t for t in tokens if t), key=len, reverse=True):
        text = text.replace(token, "***")
    return _TOKEN_LIKE.sub("***", text)


def _maybe_tokens(raws: Sequence[_Raw]) -> list[str]:
    """What an error must not show: every value of the token column, and any value of the columns
    an error quotes that could be a token put in the wrong column (long, one word, not a URL)."""
    found = []
    for raw in raws:
        for column, (value, _) in raw.cells.items():
            text = "" if value is None or column in ("name", "conn_id", "expected_settings") else str(value).strip()
            if column == "token":
                maybe = len(text) >= 6 and "://" not in text
            else:  # a token has no dot, slash or space (an address without its https:// is shown)
                maybe = len(text) >= 16 and not text.isdigit() and not any(c.isspace() or c in "./:" for c in text)
            if maybe:
                found.append(text)
    return found


def read_instances(path: Path | str) -> list[InstanceRow]:
    """Every instance of the file at ``path`` (``.csv``, ``.yaml`` or ``.yml``), checked; the
    first bad row raises InstancesError naming it (line and column)."""
    path, name = Path(path), str(path)
    reader = {".csv": _csv_rows, ".yaml": _yaml_rows, ".yml": _yaml_rows}.get(path.suffix.lower())
    if reader is None:
        raise InstancesError(f"{name}: an instances file ends in .csv, .yaml or .yml")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InstancesError(f"{name}: cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise InstancesError(f"{name}: is not UTF-8 text") from None
    return check_rows(reader(text, name))


def check_rows(raws: Sequence[_Raw]) -> list[InstanceRow]:
    """The rows checked one by one, then against each other (an instance or a connection id twice)."""
    tokens = _maybe_tokens(raws)
    rows: list[InstanceRow] = []
    try:
        for raw in raws:
            rows.append(_row(raw))
        _no_twice(rows)
    except InstancesError as exc:
        raise InstancesError(conceal(str(exc), tokens)) from None
    return rows


def _text(value: Any) -> str | None:
    text = None if value is None else str(value).strip()
    return text or None


def _row(raw: _Raw) -> InstanceRow:
    def at(column: str) -> str:
        return raw.cells[column][1] if column in raw.cells else raw.place

    values = {k: v for k, (v, _) in raw.cells.items() if _text(v) is not None}
    for column in REQUIRED:
        if column not in values:
            raise InstancesError(f"{at(column)}: is empty" if column in raw.cells else f"{raw.place}: has no {column}")
    instance_id, token, api_url = (str(values[c]).strip() for c in REQUIRED)
    conn_id = _text(values.get("conn_id")) or f"{CONN_ID_PREFIX}{instance_id}"
    if not is_conn_id(conn_id) or len(conn_id) > MAX_CONN_ID:
        raise InstancesError(f"{at('conn_id')}: must be a connection id of letters, digits, '_', '.' and '-' "
                             f"(at most {MAX_CONN_ID}), got {conn_id!r}")  # fmt: skip
    extra: dict[str, Any] = {k: values[k] for k in EXTRAS if k in values}
    try:
        cfg = instance_config(conn_id, api_url, instance_id, token, extra, _text(values.get("name")))
    except FieldError as exc:
        raise InstancesError(f"{at(_COLUMN_OF[exc.field])}: {exc.problem}") from None
    if "expected_settings" in extra:
        extra["expected_settings"] = dict(cfg.expected_settings)
    if "dashboard_url" in extra:
        extra["dashboard_url"] = cfg.dashboard_url
    for key in ("state_timeout", "reboot_timeout", "send_timeout"):
        if key in extra:
            seconds = getattr(cfg, key)
            extra[key] = int(seconds) if float(seconds).is_integer() else seconds
    places = {k: where for k, (_, where) in raw.cells.items()}
    return InstanceRow(raw.line, conn_id, cfg.instance_id, cfg.api_url, token, _text(values.get("name")), extra,
                       raw.place, places)  # fmt: skip


def _no_twice(rows: Sequence[InstanceRow]) -> None:
    """One row per instance and per connection id: a second one would be checked twice, or win silently."""
    ids: dict[str, InstanceRow] = {}
    conn_ids: dict[str, InstanceRow] = {}
    for row in rows:
        first = ids.setdefault(row.instance_id, row)
        if first is not row:
            raise InstancesError(f"{row.at('id')}: instance {row.instance_id} is already on line {first.line}")
        first = conn_ids.setdefault(row.conn_id, row)
        if first is not row:
            raise InstancesError(f"{row.at('conn_id')}: connection id {row.conn_id} is already on line {first.line}")


def _column(name: str, where: str) -> str:
    """The column a header cell (a YAML key) names; InstancesError for one this file format lacks."""
    column = ALIASES.get(name.strip().lower(), name.strip().lower())
    if column not in COLUMNS:
        known = f"{', '.join(COLUMNS)} ({', '.join(REQUIRED)} required)"
        if not _SHOWN_NAME.fullmatch(name.strip()):  # data, maybe a token: the header row is missing?
            raise InstancesError(f"{where}: a column name is expected here (is the header row missing?): {known}")
        raise InstancesError(f"{where}: unknown column {name.strip()!r}; the columns are {known}")
    return column


def _csv_rows(text: str, name: str) -> list[_Raw]:
    first = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text), delimiter=";" if first.count(";") > first.count(",") else ",",
                        skipinitialspace=True)  # fmt: skip
    header: list[tuple[str, str]] | None = None
    raws: list[_Raw] = []
    line = 1
    try:
        for cells in reader:
            start, line = line, reader.line_num + 1  # a quoted cell may span lines: the row starts at its first
            if not any(c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
                continue
            if header is None:
                header = _header(cells, f"{name} line {start}")
                continue
            if len(cells) > len(header):
                raise InstancesError(f"{name} line {start}: {len(cells)} cells, but the header names {len(header)} columns")
            raws.append(_Raw(start, f"{name} line {start}", {
                column: (cell, f"{name} line {start}, column {label}")
                for (column, label), cell in zip(header, cells, strict=False)  # a short row lacks its last cells
            }))  # fmt: skip
    except csv.Error as exc:
        raise InstancesError(f"{name} line {reader.line_num}: {exc}") from None
    return raws


def _header(cells: Sequence[str], where: str) -> list[tuple[str, str]]:
    header = [(_column(cell, where), cell.strip()) for cell in cells]
    columns = [column for column, _ in header]
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise InstancesError(f"{where}: column {twice[0]} is named twice")
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise InstancesError(f"{where}: the header has no column {missing[0]} (it names the columns: "
                             f"{', '.join(REQUIRED)} and any of {', '.join(COLUMNS[len(REQUIRED):])})")  # fmt: skip
    return header


class _Loader(yaml.SafeLoader):
    """YAML without its yes/no/on/off booleans: Green API's settings take the strings "yes" and "no"."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))  # fmt: skip


def _yaml_rows(text: str, name: str) -> list[_Raw]:
    try:
        root = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{name} line {mark.line + 1}, character {mark.column + 1}" if mark else name
        raise InstancesError(f"{where}: not valid YAML ({exc.problem or exc.context})") from None
    except yaml.YAMLError as exc:
        raise InstancesError(f"{name}: not valid YAML ({type(exc).__name__})") from None
    if root is None:
        return []
    if not isinstance(root, yaml.SequenceNode):
        raise InstancesError(f"{name} line {root.start_mark.line + 1}: must be a list of instances "
                             "(- id: ..., token: ..., api_url: ...)")  # fmt: skip
    raws = []
    for item, value in zip(root.value, data, strict=True):
        line = item.start_mark.line + 1
        if not isinstance(item, yaml.MappingNode):
            raise InstancesError(f"{name} line {line}: an instance is a mapping of id, token, api_url, ...")
        cells: dict[str, tuple[Any, str]] = {}
        for key_node, value_node in item.value:
            key_line = key_node.start_mark.line + 1
            column = _column(str(key_node.value), f"{name} line {key_line}")
            where = f"{name} line {key_line}, key {key_node.value}"
            if column in cells:
                raise InstancesError(f"{where}: {column} is given twice")
            if column == "expected_settings":
                cells[column] = (value[key_node.value], where)
            elif isinstance(value_node, yaml.ScalarNode):
                # Its text as written: a token or an id of digits stays a string, never a number.
                cells[column] = (None if value_node.tag == "tag:yaml.org,2002:null" else value_node.value, where)
            else:
                raise InstancesError(f"{where}: must be a single value")
        raws.append(_Raw(line, f"{name} line {line}", cells))
    return raws
