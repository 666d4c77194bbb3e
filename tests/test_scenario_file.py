"""The scenario file's format (SPEC 9.4): what it reads, where each problem is, and the
export written back in it. No server: the reader and the writer alone."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mock_qrm.app import Scenario, ScenarioError, parse_scenario, read_scenario
from mock_qrm.client.scenario import scenario_file
from mock_qrm.contract.models import RateLimit


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "s.toml", environ or {})
    return caught.value.lines


def test_the_specs_example_reads_as_the_apis_own_models() -> None:
    scenario = parse_scenario(
        """
[server]
time_scale = 60

[[webhooks]]
name = "orders"
url = "http://127.0.0.1:9000/qrm"
events = ["report.created", "report.file_ready"]
basic_auth = { username = "qrm", password = "${PASSWORD}" }
headers = { X-Env = "demo" }
rate_limit = { limit = 60, period = "minute" }
active = true

[[faults]]
route = "GET /api/v1/reports/{id}"
status = 503
times = 2
""",
        "s.toml",
        {"PASSWORD": "s3cret"},
    )
    assert scenario.server == {"time_scale": 60}
    [webhook] = scenario.webhooks
    assert webhook.basic_auth is not None and webhook.basic_auth.password == "s3cret"
    assert webhook.rate_limit == RateLimit(limit=60, period="minute")
    assert webhook.headers == {"X-Env": "demo"}
    [fault] = scenario.faults
    assert (fault.route, fault.status, fault.times) == ("GET /api/v1/reports/{id}", 503, 2)


def test_a_syntax_error_is_its_line() -> None:
    assert problems("[server]\ntime_scale = 60\nretries = = 3\n") == [
        "s.toml:3: toml: Invalid value (column 11)"
    ]


def test_a_misspelt_section_or_setting_is_named_with_what_was_meant() -> None:
    assert problems("[sever]\n[[webhook]]\n[server]\ntimescale = 2\n") == [
        "s.toml:1: sever: unknown section (did you mean server?)",
        "s.toml:2: webhook: unknown section (did you mean webhooks?)",
        "s.toml:4: server.timescale: unknown setting (did you mean time_scale?)",
    ]


def test_the_apis_camel_case_names_point_at_the_files() -> None:
    text = '[[faults]]\nroute = "GET /api/v1/reports"\nstatus = 500\nretryAfter = 3\n'
    assert problems(text) == [
        "s.toml:4: faults[0].retryAfter: unknown field (did you mean retry_after?)"
    ]


def test_a_section_of_the_wrong_kind_says_how_to_write_it() -> None:
    assert problems('server = 1\n[webhooks]\nname = "x"\n') == [
        "s.toml:1: server: must be a table: [server]",
        "s.toml:2: webhooks: must be an array of tables: write [[webhooks]]",
    ]


def test_lines_follow_sub_tables_and_inline_arrays_of_tables() -> None:
    text = """[[webhooks]]
name = "a"
url = "http://127.0.0.1:9/a"
events = ["report.created"]

[webhooks.basic_auth]
username = "u:v"
password = "p"

[[webhooks]]
name = "b"
url = "http://127.0.0.1:9/b"
events = [
  "report.created",
]
rate_limit.limit = 0
rate_limit.period = "minute"

faults_note = '''
[[webhooks]] inside a string is not a table
'''
"""
    assert problems(text) == [
        "s.toml:7: webhooks[0].basic_auth.username: Username must not contain ':'",
        "s.toml:16: webhooks[1].rate_limit.limit: Must be at least 1",
        "s.toml:19: webhooks[1].faults_note: unknown field; known: active, basic_auth, events,"
        " headers, name, rate_limit, url",
    ]
    inline = 'faults = [\n  { route = "GET /api/v1/reports" },\n  { route = "GET /x", status = 500 },\n]\n'
    assert problems(inline) == [
        "s.toml:2: faults[0]: a fault needs a status, a delay_ms or reset: true",
        "s.toml:3: faults[1].route: Input should be 'POST /api/v1/auth/login',"
        " 'GET /api/v1/reports', 'GET /api/v1/reports/{id}' or 'GET /files/reports/{id}.pdf'",
    ]


def test_a_name_declared_twice_is_refused_at_the_second() -> None:
    hook = (
        '[[webhooks]]\nname = "orders"\nurl = "http://127.0.0.1:9/q"\nevents = ["report.created"]\n'
    )
    assert problems(hook + hook) == [
        "s.toml:6: webhooks[1].name: 'orders' is declared twice (first at line 2): a name says"
        " which webhook to create or update"
    ]


def test_headers_the_request_sets_itself_are_refused_in_the_file_too() -> None:
    text = (
        '[[webhooks]]\nname = "a"\nurl = "http://127.0.0.1:9/a"\nevents = ["report.created"]\n'
        'headers = { Host = "x" }\n'
    )
    assert problems(text) == [
        "s.toml:5: webhooks[0].headers.Host: Host is set by the request itself"
    ]


def test_variables_dollars_and_a_stray_brace() -> None:
    text = """[[webhooks]]
name = "${NAME}"
url = "http://${HOST}:9/${MISSING}"
events = ["report.created"]
basic_auth = { username = "u", password = "$$${NAME}$$ and $5" }
headers = { X-Tpl = "${" }
"""
    assert problems(text, {"NAME": "orders", "HOST": "127.0.0.1"}) == [
        "s.toml:3: webhooks[0].url: ${MISSING} is not set in the environment",
        "s.toml:6: webhooks[0].headers.X-Tpl: `${` must start ${NAME} (write $${ for a literal ${)",
    ]
    fine = text.replace("/${MISSING}", "").replace('"${"', '"$${"')
    [webhook] = parse_scenario(fine, "s.toml", {"NAME": "orders", "HOST": "127.0.0.1"}).webhooks
    assert (webhook.name, webhook.url) == ("orders", "http://127.0.0.1:9")
    assert webhook.basic_auth is not None and webhook.basic_auth.password == "$orders$ and $5"
    assert webhook.headers == {"X-Tpl": "${"}


def test_a_ca_file_is_found_beside_the_scenario(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "rootCA.pem").write_text("not a certificate")
    config = tmp_path / "s.toml"
    config.write_text('[server]\nca_file = "certs/rootCA.pem"\ndb = "state.sqlite3"\n')
    with pytest.raises(ScenarioError) as caught:
        read_scenario(config, {})
    assert caught.value.lines == [
        f"{config}:2: server.ca_file: {tmp_path / 'certs' / 'rootCA.pem'}: holds no PEM"
        " certificate (-----BEGIN CERTIFICATE-----)"
    ]


def test_a_file_that_cannot_be_read_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ScenarioError, match=r"nope\.toml: cannot read it: No such file"):
        read_scenario(missing, {})
    binary = tmp_path / "b.toml"
    binary.write_bytes(b"[server]\n\xff\xfe\n")
    with pytest.raises(ScenarioError, match=r"b\.toml:2: toml: not UTF-8 text"):
        read_scenario(binary, {})


# --- the export, written back in the same format ----------------------------------------------


def test_an_export_reads_back_as_the_same_scenario() -> None:
    document = {
        "server": {"time_scale": 60.0, "retries": 5, "ca_file": None},
        "webhooks": [
            {
                "name": "orders & co",
                "url": "http://127.0.0.1:9000/q?a=$1",
                "events": ["report.created"],
                "active": False,
                "basicAuth": {"username": "qrm", "password": None},
                "headers": {"X-Env": "demo", "x-env-2": "${not a variable}"},
                "rateLimit": {"limit": 5, "period": "hour"},
            },
            {
                "name": "Orders-Co",
                "url": "http://127.0.0.1:9001/",
                "events": ["report.file_ready"],
                "active": True,
                "basicAuth": {"username": "u", "password": None},
                "headers": {},
                "rateLimit": None,
            },
        ],
        "faults": [
            {"route": "GET /api/v1/reports", "status": None, "delayMs": 250, "reset": False},
        ],
    }
    text, variables = scenario_file(document, "http://127.0.0.1:8765")
    assert variables == ["QRM_WEBHOOK_ORDERS_CO_PASSWORD", "QRM_WEBHOOK_ORDERS_CO_2_PASSWORD"]
    assert text.startswith("# A mock-qrm scenario, exported from http://127.0.0.1:8765\n")
    assert "set QRM_WEBHOOK_ORDERS_CO_PASSWORD, QRM_WEBHOOK_ORDERS_CO_2_PASSWORD" in text
    tomllib.loads(text)  # TOML, written by tomli-w
    environ = {variables[0]: "one$", variables[1]: "two"}
    scenario: Scenario = parse_scenario(text, "exported.toml", environ)
    assert scenario.server == {"time_scale": 60.0, "retries": 5}
    first, second = scenario.webhooks
    assert first.url == "http://127.0.0.1:9000/q?a=$1" and first.active is False
    assert first.headers == {"X-Env": "demo", "x-env-2": "${not a variable}"}
    assert first.basic_auth is not None and first.basic_auth.password == "one$"
    assert second.basic_auth is not None and second.basic_auth.password == "two"
    assert [(f.route, f.delay_ms, f.status) for f in scenario.faults] == [
        ("GET /api/v1/reports", 250, None)
    ]


def test_a_files_control_characters_never_reach_the_terminal_raw() -> None:
    [line] = problems('[server]\n"a\\u001b[31mb" = 1\n')
    assert line.startswith("s.toml:2: server.a\\x1b[31mb: unknown setting")
