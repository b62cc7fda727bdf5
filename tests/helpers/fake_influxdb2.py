"""A loopback stand-in for InfluxDB 2.x (OSS), as strict as the real one where tracker touches it.

There is no InfluxDB 2.x on the test machine; this fake follows 2.x's source (v2.7.12) for what tracker uses:
- /ping answers 204 with X-Influxdb-Build: OSS and X-Influxdb-Version: v2.7.12; /health answers 200 JSON.
- /api/v2/write?org=&bucket=&precision=: line protocol (gzip or not) stored by series and time, fields of one
  point merged as InfluxDB does.
- /api/v2/query?org=: JSON {"query", "type", "dialect"}, the dialect checked as http/query.go's Validate does;
  only the Flux queries of tracker's two shapes are understood (the host's points pivoted, sorted and limited;
  the time of its first point), anything else gets 400 "compilation failed"; answered
  in annotated CSV as Flux's encoder writes it: #datatype, #group and #default rows, a header starting with
  an empty annotation column, result and table columns, RFC3339Nano times, CRLF line ends, a blank line after
  each table; no tables: an empty body.
- /api/v2/delete?org=&bucket=: JSON {"start", "stop", "predicate"} decoded as http/delete_handler.go does:
  times RFC3339Nano, the predicate parsed with predicate/parser.go's grammar (tag rules `key = value`, keys
  bare or double-quoted identifiers, values double-quoted identifiers, numbers, true/false; only AND; OR, the
  regex operators, a single-quoted string or a bad key refused with 400 and 2.x's message; _field refused with
  501), applied to every series it matches, start and stop both inclusive. A rule on a tag the series lacks never
  matches, whatever its value: tsm1/predicate.go's Matches ("consider if the predicate matches `tag1=val1` but
  tag1 is not present in the key"), which predicate.New builds for /api/v2/delete.
- A wrong token gets 401, an unknown organization or bucket 404, with 2.x's {"code", "message"} bodies.
`cloud=True` plays InfluxDB Cloud, which names its build (X-Influxdb-Build: Cloud) and no version, as its API
docs say; with `deletes=False` too, a Cloud without /api/v2/delete (404 there).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from helpers.servers import free_port

VERSION = "v2.7.12"
SeriesKey = tuple[str, tuple[tuple[str, str], ...]]  # measurement, sorted tags
FieldValue = float | int | str | bool


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client killed mid-answer (the kill -9 tests): nothing to report


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Point:
    measurement: str
    tags: dict[str, str]
    time_ns: int
    fields: dict[str, FieldValue]


class FakeInfluxDB2:
    def __init__(self, org: str = "home", bucket: str = "tracker", token: str = "secret-token", cloud: bool = False,
                 deletes: bool = True) -> None:
        self.cloud, self.deletes_allowed = cloud, deletes
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.org, self.bucket, self.token = org, bucket, token
        self.series: dict[SeriesKey, dict[int, dict[str, FieldValue]]] = defaultdict(dict)
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)
        self.deletes: list[dict[str, str]] = []  # the accepted delete requests' bodies
        self.points_queried: list[int] = []  # points in the range of each query of points (sorted before limit)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- what tests read --------------------------------------------------------------------------

    def points(self, host: str | None = None) -> list[Point]:
        """The stored points (of `host`), in time order."""
        with self._lock:
            found = [Point(measurement, dict(tags), time_ns, dict(fields))
                     for (measurement, tags), times in self.series.items() for time_ns, fields in times.items()
                     if host is None or dict(tags).get("host") == host]
        return sorted(found, key=lambda point: (point.time_ns, sorted(point.tags.items())))

    def time_per_category(self, host: str) -> dict[str, float]:
        """sum("duration") of the host's active points by category, as the dashboard's panel shows it."""
        totals: dict[str, float] = defaultdict(float)
        for point in self.points(host):
            if point.tags.get("state") == "active":
                totals[point.tags.get("category", "")] += float(point.fields["duration"])
        return dict(totals)

    def totals(self, host: str) -> tuple[float, int]:
        """sum("duration") and count("duration") of the host's points."""
        durations = [float(point.fields["duration"]) for point in self.points(host) if "duration" in point.fields]
        return sum(durations), len(durations)

    # -- the server ---------------------------------------------------------------------------------

    def start(self) -> FakeInfluxDB2:
        server = self._server = _QuietServer(("127.0.0.1", self.port), self._handler())
        # A short poll: stop() waits for the loop to notice, half a second a test at the default.
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()  # then the port is closed: the client sees connection refused
            server.server_close()

    def _check_org(self, query: dict[str, str], bucket_needed: bool) -> None:
        if not query.get("org") and not query.get("orgID"):
            raise Refusal(400, "invalid", "Please provide either orgID or org")
        if query.get("org") != self.org:
            raise Refusal(404, "not found", f'organization name "{query.get("org") or query.get("orgID")}" not found')
        if bucket_needed:
            if not query.get("bucket") and not query.get("bucketID"):
                raise Refusal(400, "invalid", "Please provide either bucketID or bucket")
            if query.get("bucket") != self.bucket:
                raise Refusal(404, "not found", f'bucket "{query.get("bucket") or query.get("bucketID")}" not found')

    def write(self, query: dict[str, str], body: bytes) -> None:
        self._check_org(query, bucket_needed=True)
        precision = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}.get(query.get("precision", "ns"))
        if precision is None:
            raise Refusal(400, "invalid", f'invalid precision "{query.get("precision")}"')
        parsed = []
        for number, line in enumerate(body.decode().split("\n"), 1):
            if line.strip() and not line.startswith("#"):
                try:
                    parsed.append(parse_line(line, precision))
                except ValueError as error:
                    raise Refusal(400, "invalid", f"unable to parse '{line[:60]}': {error}; line {number}") from None
        with self._lock:
            for point in parsed:
                key = (point.measurement, tuple(sorted(point.tags.items())))
                self.series[key].setdefault(point.time_ns, {}).update(point.fields)

    def delete(self, query: dict[str, str], body: bytes) -> None:
        try:
            request = json.loads(body)
        except ValueError as error:
            raise Refusal(400, "invalid", f"error decoding json body: {error}") from None
        start = parse_rfc3339_nano(str(request.get("start", "")), "start")
        stop = parse_rfc3339_nano(str(request.get("stop", "")), "stop")
        rules = parse_predicate(str(request.get("predicate") or ""))
        if any(key == "_field" and operator == "=" for key, operator, _ in rules):
            raise Refusal(501, "not implemented", "delete by field is not supported")
        self._check_org(query, bucket_needed=True)
        with self._lock:
            for (measurement, tags), times in self.series.items():
                values = {"_measurement": measurement, **dict(tags)}
                if all(key in values and (values[key] == value) == (operator == "=") for key, operator, value in rules):
                    for time_ns in [time_ns for time_ns in times if start <= time_ns <= stop]:
                        del times[time_ns]
            self.deletes.append(request)

    def query(self, query: dict[str, str], body: bytes) -> str:
        self._check_org(query, bucket_needed=False)
        try:
            request = json.loads(body)
        except ValueError as error:
            raise Refusal(400, "invalid", f"failed to decode request body: {error}") from None
        if request.get("type", "flux") != "flux":
            raise Refusal(400, "invalid", f"unknown query type: {request['type']}")
        dialect = request.get("dialect") or {}
        for annotation in dialect.get("annotations") or []:
            if annotation not in ("group", "datatype", "default"):
                raise Refusal(400, "invalid", f"unknown dialect annotation type: {annotation}")
        time_format = dialect.get("dateTimeFormat") or "RFC3339"
        if time_format not in ("RFC3339", "RFC3339Nano"):
            raise Refusal(400, "invalid", f"unknown dialect date time format: {time_format}")
        text = request.get("query", "")
        shape = _POINTS_QUERY.fullmatch(text) or _FIRST_QUERY.fullmatch(text)
        if shape is None:
            raise Refusal(400, "invalid", "compilation failed: this fake of InfluxDB 2.x runs only tracker's query")
        bucket, measurement, host = (flux_unquote(shape[name]) for name in ("bucket", "measurement", "host"))
        if bucket != self.bucket:
            raise Refusal(404, "not found", f'failed to initialize execute state: could not find bucket "{bucket}"')
        start = parse_rfc3339_nano(shape["start"], "start")
        stop = parse_rfc3339_nano(shape["stop"], "stop")
        rows = [point for point in self.points(host) if point.measurement == measurement
                and start <= point.time_ns < stop]
        annotations = dialect.get("annotations") or []
        if shape.re is _FIRST_QUERY:
            return first_time_csv(rows, annotations, time_format == "RFC3339Nano")
        with self._lock:
            self.points_queried.append(len(rows))  # what the server sorted for this query
        return annotated_csv(rows[:int(shape["limit"])], start, stop, annotations, time_format == "RFC3339Nano")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path == "/ping":
                    self._reply(204, b"", "")
                elif path == "/health":
                    self._reply(200, json.dumps({"name": "influxdb", "message": "ready for queries and writes",
                                                 "status": "pass", "version": VERSION}).encode())
                else:
                    self._reply(404, json.dumps({"code": "not found", "message": "path not found"}).encode())

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                query = {key: values[0] for key, values in parse_qs(parts.query).items()}
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                try:
                    if self.headers.get("Authorization") != f"Token {server.token}":
                        raise Refusal(401, "unauthorized", "unauthorized access")
                    if parts.path == "/api/v2/write":
                        server.write(query, body)
                        self._reply(204, b"", "")
                    elif parts.path == "/api/v2/delete" and server.deletes_allowed:
                        server.delete(query, body)
                        self._reply(204, b"", "")
                    elif parts.path == "/api/v2/query":
                        self._reply(200, server.query(query, body).encode(), "text/csv; charset=utf-8")
                    else:
                        raise Refusal(404, "not found", "path not found")
                except Refusal as refusal:
                    self._reply(refusal.status, json.dumps({"code": refusal.code, "message": refusal.message}).encode())

            def _reply(self, status: int, body: bytes, content_type: str = "application/json; charset=utf-8") -> None:
                with server._lock:
                    server.requests.append((self.command, urlsplit(self.path).path, status))
                self.send_response(status)
                if server.cloud:
                    self.send_header("X-Influxdb-Build", "Cloud")
                else:
                    self.send_header("X-Influxdb-Build", "OSS")
                    self.send_header("X-Influxdb-Version", VERSION)
                if content_type:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


# -- Flux: tracker's query, and annotated CSV -------------------------------------------------------

_FLUX_STRING = r'"(?:[^"\\]|\\.)*"'
_FLUX_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z"
_HOST_POINTS = (
    rf"from\(bucket: (?P<bucket>{_FLUX_STRING})\)\n"
    rf"  \|> range\(start: (?P<start>{_FLUX_TIME}), stop: (?P<stop>{_FLUX_TIME})\)\n"
    rf"  \|> filter\(fn: \(r\) => r\._measurement == (?P<measurement>{_FLUX_STRING})"
    rf" and r\.host == (?P<host>{_FLUX_STRING})\)\n")
_FIRST_QUERY = re.compile(
    _HOST_POINTS + r"  \|> first\(\)\n"
    r'  \|> keep\(columns: \["_time"\]\)\n'
    r"  \|> group\(\)\n"
    r'  \|> min\(column: "_time"\)\n')
_POINTS_QUERY = re.compile(
    _HOST_POINTS +
    r'  \|> pivot\(rowKey: \["_time"\], columnKey: \["_field"\], valueColumn: "_value"\)\n'
    r"  \|> group\(\)\n"
    r'  \|> sort\(columns: \["_time"\]\)\n'
    r"  \|> limit\(n: (?P<limit>\d+)\)\n")
_FLUX_ESCAPES = {"\\": "\\", '"': '"', "$": "$", "n": "\n", "r": "\r", "t": "\t"}


def flux_unquote(literal: str) -> str:
    return re.sub(r"\\(.)", lambda match: _FLUX_ESCAPES[match[1]], literal[1:-1])


def annotated_csv(points: list[Point], start_ns: int, stop_ns: int, annotations: list[str], nano: bool) -> str:
    """One table (group() leaves an empty group key) of the pivoted points, as Flux's CSV encoder writes it."""
    if not points:
        return ""
    tags = sorted({key for point in points for key in point.tags})
    fields = sorted({key for point in points for key in point.fields})
    types = {field: _flux_type(next(point.fields[field] for point in points if field in point.fields))
             for field in fields}
    time_type = "dateTime:RFC3339Nano" if nano else "dateTime:RFC3339"
    header = ["", "result", "table", "_start", "_stop", "_time", "_measurement", *tags, *fields]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    rows = {"datatype": ["#datatype", "string", "long", time_type, time_type, time_type, "string",
                         *["string"] * len(tags), *(types[field] for field in fields)],
            "group": ["#group", *["false"] * (len(header) - 1)],
            "default": ["#default", "_result", *[""] * (len(header) - 2)]}
    for annotation in annotations:  # in the order asked for
        writer.writerow(rows[annotation])
    writer.writerow(header)
    for point in points:
        writer.writerow(["", "", "0", rfc3339_nano(start_ns), rfc3339_nano(stop_ns), rfc3339_nano(point.time_ns),
                         point.measurement, *(point.tags.get(tag, "") for tag in tags),
                         *(_flux_value(point.fields[field]) if field in point.fields else "" for field in fields)])
    out.write("\r\n")
    return out.getvalue()


def first_time_csv(points: list[Point], annotations: list[str], nano: bool) -> str:
    """The one-row table of min(column: "_time") over the first() of each series and field: just the time."""
    if not points:
        return ""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    rows = {"datatype": ["#datatype", "string", "long", "dateTime:RFC3339Nano" if nano else "dateTime:RFC3339"],
            "group": ["#group", "false", "false", "false"], "default": ["#default", "_result", "", ""]}
    for annotation in annotations:
        writer.writerow(rows[annotation])
    writer.writerow(["", "result", "table", "_time"])
    writer.writerow(["", "", "0", rfc3339_nano(min(point.time_ns for point in points))])
    out.write("\r\n")
    return out.getvalue()


def _flux_type(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {int: "long", float: "double", str: "string"}[type(value)]


def _flux_value(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):  # Go's strconv.FormatFloat(v, 'f', -1, 64): shortest, never an exponent
        text = format(Decimal(repr(value)), "f")
        return text.removesuffix(".0") if "." in text and text.endswith(".0") else text
    return str(value)


def rfc3339_nano(time_ns: int) -> str:
    """Go's RFC3339Nano: trailing zeros of the fraction dropped, no fraction when it is zero."""
    seconds, nanoseconds = divmod(time_ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanoseconds:09d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


_RFC3339_NANO = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")


def parse_rfc3339_nano(text: str, field: str) -> int:
    """Go's time.Parse(time.RFC3339Nano, text) as nanoseconds; 2.x's message when it cannot."""
    match = _RFC3339_NANO.fullmatch(text)
    try:
        if match is None:
            raise ValueError(text)
        zone = "+00:00" if match[3] == "Z" else match[3]
        moment = datetime.fromisoformat(match[1] + zone)
    except ValueError:
        example = "2009-01-02T23:00:00Z" if field == "start" else "2009-01-01T23:00:00Z"
        raise Refusal(400, "invalid", f"invalid RFC3339Nano for field {field}, please format your time with"
                                      f" RFC3339Nano format, example: {example}") from None
    return int(moment.timestamp()) * 1_000_000_000 + int((match[2] or "0").ljust(9, "0"))


# -- 2.x's delete predicate (predicate/parser.go over influxql's scanner) ----------------------------

_TOKEN = re.compile(r"""
    (?P<ws>\s+) | (?P<ident>[A-Za-z_][A-Za-z0-9_]*) | (?P<quoted>"(?:[^"\\\n]|\\.)*") | (?P<string>'(?:[^'\\\n]|\\.)*')
    | (?P<number>\d+(?:\.\d+)?) | (?P<op>=~|!~|!=|<>|<=|>=|=|<|>) | (?P<lparen>\() | (?P<rparen>\)) | (?P<sub>-)
    """, re.VERBOSE)
_SCANNER_ESCAPES = {"n": "\n", "\\": "\\", '"': '"', "'": "'"}


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """(kind, literal, position) as influxql's scanner gives them, whitespace dropped, then ("eof", "", end)."""
    tokens = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            tokens.append(("illegal", text[position], position))
            break
        kind = match.lastgroup or ""
        literal = match[0]
        if kind == "ident" and literal.upper() in ("AND", "OR", "TRUE", "FALSE"):
            kind = literal.lower()
        elif kind == "quoted":
            kind = "ident"
            body = literal[1:-1]
            if any(escape[1] not in _SCANNER_ESCAPES for escape in re.finditer(r"\\(.)", body)):
                tokens.append(("badescape", literal, position))
                break
            literal = re.sub(r"\\(.)", lambda escape: _SCANNER_ESCAPES[escape[1]], body)
        elif kind == "string":
            literal = literal[1:-1]
        if kind != "ws":
            tokens.append((kind, literal, position))
        position = match.end()
    tokens.append(("eof", "", len(text)))
    return tokens


def parse_predicate(text: str) -> list[tuple[str, str, str]]:
    """The tag rules (key, "=" or "!=", value) of a predicate that 2.x accepts (they are ANDed); Refusal with
    2.x's message for one it refuses."""
    if not text:
        return []
    tokens = _tokens(text)
    rules: list[tuple[str, str, str]] = []
    index = 0
    depth = 0
    expect_rule = True
    while True:
        kind, literal, position = tokens[index]
        if kind in ("ident", "number") and expect_rule:
            if kind != "ident":
                raise Refusal(400, "invalid", f"bad tag key, at position {position}")
            operator_kind, operator, operator_position = tokens[index + 1]
            if operator in ("=~", "!~"):
                raise Refusal(400, "invalid", f'operator: "{operator}" at position: {operator_position} is not'
                                              " supported yet")
            if operator not in ("=", "!=", "<>"):
                raise Refusal(400, "invalid", f'invalid operator "{operator or operator_kind.upper()}" at position:'
                                              f" {operator_position}")
            value_index = index + 2
            value = ""
            while tokens[value_index][0] == "sub":
                value = "-"
                value_index += 1
            value_kind, value_literal, value_position = tokens[value_index]
            if value_kind in ("ident", "number"):
                value += value_literal
            elif value_kind in ("true", "false"):
                value = value_kind
            else:
                raise Refusal(400, "invalid", f"bad tag value: {json.dumps(value_literal)}, at position"
                                              f" {value_position}")
            rules.append((literal, "=" if operator == "=" else "!=", value))
            index = value_index + 1
            expect_rule = False
        elif kind == "and" and not expect_rule:
            expect_rule = True
            index += 1
        elif kind == "or":
            raise Refusal(400, "invalid", f"the logical operator OR is not supported yet at position {position}")
        elif kind == "lparen" and expect_rule:
            depth += 1
            index += 1
        elif kind == "rparen" and not expect_rule:
            depth -= 1
            if depth < 0:
                raise Refusal(400, "invalid", "extra ) seen")
            index += 1
        elif kind == "eof" and not expect_rule:
            if depth != 0:
                raise Refusal(400, "invalid", "extra ( seen")
            return rules
        else:
            raise Refusal(400, "invalid", f"bad logical expression, at position {position}")


# -- line protocol --------------------------------------------------------------------------------

def _split(text: str, separator: str, quotes: bool = False, most: int = -1) -> list[str]:
    """Split at `separator` where it is not escaped by a backslash (nor, with `quotes`, inside double quotes),
    at most `most` times (-1: no limit)."""
    parts, current, quoted, index = [], [], False, 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            current.append(text[index:index + 2])
            index += 2
            continue
        if char == '"' and quotes:
            quoted = not quoted
        if char == separator and not quoted and most != 0:
            most -= 1
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\([,= \\])", r"\1", text)


def parse_line(line: str, precision_ns: int) -> Point:
    series, rest = [*_split(line, " ", most=1), ""][:2]
    sections = _split(rest, " ", quotes=True)
    if len(sections) not in (1, 2) or not sections[0]:
        raise ValueError("bad line")
    time_ns = int(sections[1]) * precision_ns if len(sections) == 2 else 0
    measurement, *tag_texts = _split(series, ",")
    tags = {}
    for tag in tag_texts:
        key, value = [*_split(tag, "=", most=1), ""][:2]
        if not value:
            raise ValueError("missing tag value")
        tags[_unescape(key)] = _unescape(value)
    fields: dict[str, FieldValue] = {}
    for field in _split(sections[0], ",", quotes=True):
        key, value = [*_split(field, "=", most=1), ""][:2]
        fields[_unescape(key)] = _field_value(value)
    return Point(_unescape(measurement), tags, time_ns, fields)


def _field_value(text: str) -> Any:
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        return re.sub(r'\\(["\\])', r"\1", text[1:-1])
    if text.endswith("i"):
        return int(text[:-1])
    if text in ("t", "T", "true", "True", "TRUE"):
        return True
    if text in ("f", "F", "false", "False", "FALSE"):
        return False
    return float(text)
