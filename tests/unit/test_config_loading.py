"""Reading settings: every problem names its key and the file or variable that set it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from integrations.oots.settings import OOTS_SETTINGS, OotsSettings
from integrations.sf2250.settings import SUBSCRIPTIONS
from serviceplatform.config import load_settings, read_settings
from serviceplatform.errors import ConfigurationError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "platform.toml"
    path.write_text(text, encoding="utf-8")
    return path


def refusal(path: Path | None, environ: dict[str, str]) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(path, environ)
    return caught.value.detail or ""


def test_sp_config_names_the_file_and_is_no_setting(tmp_path: Path) -> None:
    path = write(tmp_path, "[logging]\nlevel = 'DEBUG'\n")
    settings = load_settings(path, {"SP_CONFIG": str(path)})
    assert settings.logging.level == "DEBUG"


def test_test_suite_variables_are_no_settings() -> None:
    environ = {"SP_TEST_POSTGRES_URL": "postgresql+psycopg://x", "SP_TEST_AMQP_URL": "amqp://"}
    assert load_settings(None, environ).database.url == "sqlite:///serviceplatform.sqlite"


def test_a_variable_sets_a_nested_setting() -> None:
    environ = {"SP_PEERS__NEMSMS__READ_TIMEOUT_SECONDS": "0.7", "SP_SOAP__MAX_BODY_BYTES": "12"}
    settings = load_settings(None, environ)
    assert settings.peer("nemsms").read_timeout_seconds == 0.7
    assert settings.soap.max_body_bytes == 12


def test_an_unknown_variable_is_refused_by_name() -> None:
    assert refusal(None, {"SP_FOO__BAR": "1"}) == "unknown setting foo from SP_FOO__BAR"


def test_an_unknown_variable_inside_a_known_table_is_refused_by_name(tmp_path: Path) -> None:
    path = write(tmp_path, "[soap]\nmax_body_bytes = 10\n")
    detail = refusal(path, {"SP_SOAP__MAXBYTES": "1"})
    assert detail == "unknown setting soap.maxbytes from SP_SOAP__MAXBYTES"


def test_an_unknown_key_in_the_file_names_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[oots.requesters.29189846]\nname = 'x'\nnmae = 'y'\n")
    assert refusal(path, {}) == f"unknown setting oots.requesters.29189846.nmae in {path}"


def test_a_wrong_type_in_the_file_names_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[soap]\nmax_body_bytes = '512'\n")
    detail = refusal(path, {})
    assert detail == f"setting soap.max_body_bytes in {path} must be an integer, not a string"


def test_true_is_no_number(tmp_path: Path) -> None:
    path = write(tmp_path, "[peers.nemsms]\nmax_retries = true\n")
    detail = refusal(path, {})
    assert (
        detail
        == f"setting peers.nemsms.max_retries in {path} must be an integer, not true or false"
    )


def test_a_list_of_the_wrong_items_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "[security]\ntrusted_issuers = ['a', 1]\n")
    detail = refusal(path, {})
    assert detail == (
        f"setting security.trusted_issuers in {path} must be a list of strings, holding an integer"
    )


def test_a_table_given_as_a_value_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "database = 'sqlite://'\n")
    assert refusal(path, {}) == f"setting database in {path} must be a table"


def test_a_wrong_type_from_a_variable_names_the_variable() -> None:
    detail = refusal(None, {"SP_SOAP__MAX_BODY_BYTES": "big"})
    assert (
        detail
        == "setting soap.max_body_bytes from SP_SOAP__MAX_BODY_BYTES: 'big' is not an integer"
    )


def test_a_boolean_variable_must_say_yes_or_no() -> None:
    variable = "SP_SUBSCRIPTIONS__SCHEDULER_ENABLED"
    off = load_settings(None, {variable: "off"})
    assert off.section(SUBSCRIPTIONS).scheduler_enabled is False
    assert off.scheduler.enabled is False
    assert load_settings(None, {variable: "Yes"}).section(SUBSCRIPTIONS).scheduler_enabled is True
    detail = refusal(None, {variable: "maybe"})
    assert (
        detail
        == f"setting subscriptions.scheduler_enabled from {variable}: 'maybe' is not true or false"
    )


def test_a_variable_below_a_value_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "[database]\nurl = 'sqlite://'\n")
    detail = refusal(path, {"SP_DATABASE__URL__HOST": "x"})
    assert detail == f"SP_DATABASE__URL__HOST: setting database.url is not a table in {path}"


def test_a_variable_with_an_empty_part_is_refused() -> None:
    detail = refusal(None, {"SP_SOAP____MAX_BODY_BYTES": "1"})
    assert detail == "SP_SOAP____MAX_BODY_BYTES names no setting (SP_<TABLE>__<KEY>)"


def test_every_problem_is_listed_and_counted(tmp_path: Path) -> None:
    path = write(tmp_path, "[soap]\nmax_body_bytes = 'x'\n[logging]\nlevle = 'DEBUG'\n")
    loaded = read_settings(path, {"SP_FOO": "1"})
    assert loaded.problems == [
        f"setting soap.max_body_bytes in {path} must be an integer, not a string",
        f"unknown setting logging.levle in {path}",
        "unknown setting foo from SP_FOO",
    ]
    assert loaded.settings.soap.max_body_bytes == 512 * 1024  # the default stays
    assert refusal(path, {"SP_FOO": "1"}) == (
        f"setting soap.max_body_bytes in {path} must be an integer, not a string"
        " (and 2 more: `serviceplatform config check` lists them)"
    )


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    assert refusal(missing, {}) == f"configuration file {missing} does not exist"


def test_an_integrations_section_loads_into_its_own_type_with_the_same_checks(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "[oots]\npoll_interval_seconds = 1\n[oots.requesters.29189846]\nname = 'Kommune A'\n"
        "[subscriptions]\nrun_at = '03:00'\n",
    )
    settings = load_settings(path, {"SP_OOTS__PARTY_ID": "AP_DK"})
    oots = settings.section(OOTS_SETTINGS)
    assert isinstance(oots, OotsSettings)
    assert (oots.poll_interval_seconds, oots.party_id) == (1.0, "AP_DK")
    assert oots.requesters["29189846"].name == "Kommune A"
    assert settings.section(SUBSCRIPTIONS).run_at == "03:00"
    bad = write(tmp_path, "[oots]\npoll_interval = 1\n[subscriptions]\nretention_days = 'x'\n")
    assert read_settings(bad, {}).problems == [
        f"unknown setting oots.poll_interval in {bad}",
        f"setting subscriptions.retention_days in {bad} must be an integer, not a string",
    ]


def test_sections_is_no_setting(tmp_path: Path) -> None:
    path = write(tmp_path, "[sections]\noots = 1\n")
    assert refusal(path, {}) == f"unknown setting sections in {path}"


@pytest.mark.parametrize(
    ("text", "key", "wording"),
    [
        ("[distributor]\nbatch_size = 0\n", "distributor.batch_size", "must be more than 0, not 0"),
        ("[distributor.amqp]\nin_flight = -1\n", "distributor.amqp.in_flight", "more than 0"),
        ("[soap]\nmax_body_bytes = 0\n", "soap.max_body_bytes", "must be more than 0, not 0"),
        ("[peers.nemsms]\nread_timeout_seconds = 0.0\n", "peers.nemsms.read_timeout_seconds", ""),
        ("[peers.nemsms]\nmax_retries = -1\n", "peers.nemsms.max_retries", "must be 0 or more"),
        ("[subscriptions]\nlist_parts_in_flight = 0\n", "subscriptions.list_parts_in_flight", ""),
        ("[oots]\ncache_ttl_seconds = -5\n", "oots.cache_ttl_seconds", "must be 0 or more, not -5"),
        ("[oots.as4]\nmax_body_bytes = 0\n", "oots.as4.max_body_bytes", "more than 0"),
        ("[routing]\nreload_interval_seconds = nan\n", "routing.reload_interval_seconds", "finite"),
        ("[peers.nemsms]\nbudget_seconds = inf\n", "peers.nemsms.budget_seconds", "finite"),
    ],
)
def test_a_number_out_of_range_in_the_file_names_key_and_file(
    tmp_path: Path, text: str, key: str, wording: str
) -> None:
    path = write(tmp_path, text)
    detail = refusal(path, {})
    assert detail.startswith(f"setting {key} in {path} must be ")
    assert wording in detail


def test_a_number_out_of_range_from_a_variable_names_the_variable() -> None:
    detail = refusal(None, {"SP_DISTRIBUTOR__BATCH_SIZE": "-3"})
    variable = "from SP_DISTRIBUTOR__BATCH_SIZE"
    assert detail == f"setting distributor.batch_size {variable} must be more than 0, not -3"


def test_zero_is_taken_where_a_setting_allows_it(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[security]\nclock_skew_seconds = 0\n"
        "[peers.nemsms]\nmax_retries = 0\nbackoff_seconds = 0.0\n"
        "[oots]\ncache_ttl_seconds = 0\npoll_interval_seconds = 0\nanswer_wait_seconds = 0\n",
    )
    settings = load_settings(path, {})
    assert settings.security.clock_skew_seconds == 0
    assert (settings.peer("nemsms").max_retries, settings.peer("nemsms").backoff_seconds) == (0, 0)
    oots = settings.section(OOTS_SETTINGS)
    assert (oots.cache_ttl_seconds, oots.poll_interval_seconds, oots.answer_wait_seconds) == (
        0,
        0,
        0,
    )


def test_config_check_lists_each_number_out_of_range(tmp_path: Path) -> None:
    path = write(tmp_path, "[distributor]\nbatch_size = 0\n[distributor.amqp]\nin_flight = 0\n")
    problems = read_settings(path, {}).problems
    assert [p.split(" in ")[0] for p in problems] == [
        "setting distributor.batch_size",
        "setting distributor.amqp.in_flight",
    ]


def test_the_documented_entity_ids_are_the_code_defaults() -> None:
    """docs/deployment.md showed entityid.kombit.dk where docs/configuration.md and the code
    have serviceplatformen.dk: an operator copying either got a different token audience."""
    from serviceplatform.registry import soap_services

    defaults = {service.key: service.default_entity_id for service in soap_services()}
    docs = Path(__file__).resolve().parents[2] / "docs"
    pattern = re.compile(r'^\[services\.(\w+)\][^\n]*\nentity_id = "([^"]+)"', re.M)
    found = [
        (name, key, value)
        for name in ("configuration.md", "deployment.md")
        for key, value in pattern.findall((docs / name).read_text(encoding="utf-8"))
    ]
    assert {name for name, _, _ in found} == {"configuration.md", "deployment.md"}
    assert [f for f in found if defaults.get(f[1]) != f[2]] == []
