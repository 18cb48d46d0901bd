"""The file transport to Beskedfordeler, the message value, the in-memory fake and the factory."""

from __future__ import annotations

import os
import secrets
import stat
import threading
import uuid
from pathlib import Path

import pytest

from serviceplatform.config import AmqpDistributorSettings, DistributorSettings, Settings
from serviceplatform.distribution import (
    FileDropDistributor,
    MemoryDistributor,
    OutgoingMessage,
    distributor_from_settings,
)
from serviceplatform.distribution.amqp import (
    AmqpDistributor,
    connection_parameters,
    parse_standard_retur,
)
from serviceplatform.distribution.tokens import FileTokenSource
from serviceplatform.errors import (
    ConfigurationError,
    DistributorRejected,
    DistributorUnavailable,
)

CVR = "29189846"


def message(body: bytes = b"<besked/>", besked_id: str | None = None) -> OutgoingMessage:
    return OutgoingMessage(besked_id or str(uuid.uuid4()), CVR, body)


def umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


# --- OutgoingMessage ------------------------------------------------------------------------


# Named, since a fresh UUID in the id would differ between xdist workers' collections.
@pytest.mark.parametrize(
    "besked_id",
    ["", "not-a-uuid", "../../etc/passwd", f"{uuid.uuid4()}/x"],
    ids=["empty", "not-a-uuid", "a-path", "uuid-and-more"],
)
def test_besked_id_must_be_a_uuid(besked_id):
    with pytest.raises(ValueError, match="UUID"):
        OutgoingMessage(besked_id, CVR, b"<x/>")


@pytest.mark.parametrize("cvr", ["", "1234567", "123456789", "1234567a"])
def test_authority_must_be_a_cvr(cvr):
    with pytest.raises(ValueError, match="CVR"):
        OutgoingMessage(str(uuid.uuid4()), cvr, b"<x/>")


def test_body_must_be_bytes():
    with pytest.raises(ValueError, match="bytes"):
        OutgoingMessage(str(uuid.uuid4()), CVR, b"")


# --- FileDropDistributor --------------------------------------------------------------------


def test_writes_one_file_named_after_the_besked_id(tmp_path):
    directory = tmp_path / "drop" / "beskedfordeler"
    sent = message(b"<besked>1</besked>")
    with FileDropDistributor(directory) as distributor:
        distributor.deliver(sent)
    target = directory / f"{sent.besked_id}.xml"
    assert target.read_bytes() == b"<besked>1</besked>"
    assert sorted(p.name for p in directory.iterdir()) == [target.name]
    assert stat.S_IMODE(directory.stat().st_mode) == 0o750 & ~umask()
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_same_id_same_bytes_is_a_no_op(tmp_path):
    distributor = FileDropDistributor(tmp_path)
    sent = message(b"<besked>same</besked>")
    distributor.deliver(sent)
    target = distributor.path_for(sent.besked_id)
    before = target.stat()
    distributor.deliver(OutgoingMessage(sent.besked_id, CVR, b"<besked>same</besked>"))
    after = target.stat()
    # Not rewritten: the same inode (a rewrite renames a new file over the old one).
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert os.listdir(tmp_path) == [target.name]


def test_same_id_other_bytes_replaces_the_file(tmp_path):
    distributor = FileDropDistributor(tmp_path)
    first = message(b"<besked>first</besked>")
    distributor.deliver(first)
    distributor.deliver(OutgoingMessage(first.besked_id, CVR, b"<besked>corrected</besked>"))
    assert distributor.path_for(first.besked_id).read_bytes() == b"<besked>corrected</besked>"
    assert os.listdir(tmp_path) == [f"{first.besked_id}.xml"]


def test_failed_write_leaves_no_temp_file_and_keeps_the_old_version(tmp_path, monkeypatch):
    distributor = FileDropDistributor(tmp_path)
    first = message(b"<besked>first</besked>")
    distributor.deliver(first)

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(DistributorUnavailable, match="No space left") as caught:
        distributor.deliver(OutgoingMessage(first.besked_id, CVR, b"<besked>second</besked>"))
    assert caught.value.code == "SP-430"
    assert caught.value.retryable
    assert os.listdir(tmp_path) == [f"{first.besked_id}.xml"]
    assert distributor.path_for(first.besked_id).read_bytes() == b"<besked>first</besked>"


def test_a_reader_never_sees_a_partial_file(tmp_path):
    distributor = FileDropDistributor(tmp_path)
    besked_id = str(uuid.uuid4())
    versions = [b"<a>" + b"a" * 300_000 + b"</a>", b"<b>" + b"b" * 200_000 + b"</b>"]
    target = distributor.path_for(besked_id)
    seen: list[bytes] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            # Files are only ever replaced, never removed, so a listed file stays readable.
            seen.extend(path.read_bytes() for path in tmp_path.glob("*.xml"))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for round_ in range(40):
            distributor.deliver(OutgoingMessage(besked_id, CVR, versions[round_ % 2]))
    finally:
        done.set()
        reader.join()
    assert seen
    assert all(content in versions for content in seen)
    assert target.read_bytes() == versions[1]
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_unwritable_directory_is_unavailable(tmp_path):
    # A path under a regular file cannot become a directory, even for root.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    distributor = FileDropDistributor(blocker / "drop")
    with pytest.raises(DistributorUnavailable) as caught:
        distributor.deliver(message())
    assert str(blocker / "drop") in caught.value.error_text
    assert ".xml" not in caught.value.error_text


# --- FileDropDistributor: batches -----------------------------------------------------------
#
# Two ways to write a batch: unnamed files linked under their names once durable (Linux,
# O_TMPFILE) and named temporary files renamed (elsewhere, or a file system without unnamed
# files). Each batch test runs both.


@pytest.fixture(params=["unnamed", "named"])
def kind(request, monkeypatch) -> str:
    from serviceplatform.distribution import file_drop

    if request.param == "named":
        monkeypatch.setattr(file_drop, "_UNNAMED_FILES", False)
    else:
        assert file_drop._UNNAMED_FILES  # this machine (Linux) has them
    return str(request.param)


def _tmp_names(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


def _fail_on_call(monkeypatch, owner: object, name: str, number: int) -> None:
    """``owner.<name>`` raises EIO on its ``number``-th call from now on (1-based)."""
    original = getattr(owner, name)
    calls = [0]

    def failing(*args, **kwargs):
        calls[0] += 1
        if calls[0] == number:
            raise OSError(5, "Input/output error")
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)


FAILURES = {
    "unnamed": [("write", 2), ("fchmod", 3), ("_syncfs", 1), ("link", 2), ("_syncfs", 2)],
    "named": [("write", 2), ("fchmod", 3), ("_syncfs", 1), ("replace", 2), ("fsync", 1)],
}


@pytest.mark.parametrize("step", range(5))
def test_a_batch_that_fails_part_way_leaves_no_temporary_file(tmp_path, monkeypatch, kind, step):
    from serviceplatform.distribution import file_drop

    distributor = FileDropDistributor(tmp_path)
    kept = message(b"<besked>first</besked>")
    distributor.deliver(kept)
    batch = [
        OutgoingMessage(kept.besked_id, CVR, b"<besked>second</besked>"),
        message(b"<besked>b</besked>"),
        message(b"<besked>c</besked>"),
    ]
    failing, number = FAILURES[kind][step]
    _fail_on_call(monkeypatch, file_drop if failing.startswith("_") else os, failing, number)
    outcome = distributor.deliver_batch(batch)
    monkeypatch.undo()
    assert list(outcome) == [0] and isinstance(outcome[0], DistributorUnavailable)
    assert "Input/output error" in outcome[0].error_text
    assert _tmp_names(tmp_path) == []
    # Whatever got its name before the failure is a whole file of the batch; the rest is as
    # it was, and the whole batch is delivered again by the caller.
    versions = {m.besked_id: {m.body} for m in batch}
    versions[kept.besked_id].add(kept.body)
    for path in tmp_path.glob("*.xml"):
        assert path.read_bytes() in versions[path.stem]
    assert distributor.deliver_batch(batch) == {0: None, 1: None, 2: None}
    assert all(distributor.path_for(m.besked_id).read_bytes() == m.body for m in batch)
    assert _tmp_names(tmp_path) == []


def test_a_batch_is_durable_before_it_is_named_and_named_durably(tmp_path, monkeypatch, kind):
    from serviceplatform.distribution import file_drop

    distributor = FileDropDistributor(tmp_path)
    kept = message(b"<besked>first</besked>")
    distributor.deliver(kept)
    # A new file, and a different version of one in place (replaced through a temporary name).
    batch = [message(b"<besked>a</besked>"), OutgoingMessage(kept.besked_id, CVR, b"<b>2</b>")]
    steps: list[str] = []
    syncfs, link, replace, fsync = file_drop._syncfs, os.link, os.replace, os.fsync

    def recorded_syncfs(directory):
        names = sorted(os.listdir(tmp_path))
        steps.append(f"syncfs, {sum(n.endswith('.xml') for n in names)} named")
        syncfs(directory)

    def recorded_link(source, target, **kwargs):
        try:
            link(source, target, **kwargs)
        except FileExistsError:
            steps.append("link: exists")
            raise
        steps.append("link temporary" if target.endswith(".tmp") else "link")

    def recorded_replace(source, target, **kwargs):
        steps.append("rename")
        replace(source, target, **kwargs)

    def recorded_fsync(fd):
        steps.append("fsync directory" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        fsync(fd)

    monkeypatch.setattr(file_drop, "_syncfs", recorded_syncfs)
    monkeypatch.setattr(os, "link", recorded_link)
    monkeypatch.setattr(os, "replace", recorded_replace)
    monkeypatch.setattr(os, "fsync", recorded_fsync)
    assert distributor.deliver_batch(batch) == {0: None, 1: None}
    if kind == "unnamed":
        expected = [
            "syncfs, 1 named",
            "link",
            "link: exists",
            "link temporary",
            "rename",
            "syncfs, 2 named",
        ]
    else:
        expected = ["syncfs, 1 named", "rename", "rename", "fsync directory"]
    assert steps == expected
    assert all(distributor.path_for(m.besked_id).read_bytes() == m.body for m in batch)


def test_a_batch_leaves_a_file_with_the_same_bytes_as_it_is(tmp_path, kind):
    distributor = FileDropDistributor(tmp_path)
    kept = message(b"<besked>same</besked>")
    distributor.deliver_batch([kept])
    before = distributor.path_for(kept.besked_id).stat()
    again = OutgoingMessage(kept.besked_id, CVR, b"<besked>same</besked>")
    assert distributor.deliver_batch([again, message()]) == {0: None, 1: None}
    after = distributor.path_for(kept.besked_id).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert len(os.listdir(tmp_path)) == 2


def test_the_same_besked_id_twice_in_a_batch_keeps_the_later_version(tmp_path, kind):
    distributor = FileDropDistributor(tmp_path)
    first = message(b"<besked>earlier</besked>")
    later = OutgoingMessage(first.besked_id, CVR, b"<besked>later</besked>")
    assert distributor.deliver_batch([first, later]) == {0: None, 1: None}
    assert distributor.path_for(first.besked_id).read_bytes() == b"<besked>later</besked>"
    assert os.listdir(tmp_path) == [f"{first.besked_id}.xml"]


def test_a_leftover_temporary_file_is_neither_reused_nor_removed(tmp_path, monkeypatch, kind):
    sent = message(b"<besked>new</besked>")
    distributor = FileDropDistributor(tmp_path)
    # An older version in place (so the unnamed way needs a temporary name too), and what a
    # crashed run left under the name this run draws first.
    distributor.deliver(OutgoingMessage(sent.besked_id, CVR, b"<besked>old</besked>"))
    leftover = tmp_path / f".{sent.besked_id}.aaaaaaaa.tmp"
    leftover.write_bytes(b"<besked>a crashed run's longer version</besked>")
    drawn = iter(["aaaaaaaa", "bbbbbbbb"])
    monkeypatch.setattr(secrets, "token_hex", lambda _: next(drawn))
    assert distributor.deliver_batch([sent]) == {0: None}
    assert (tmp_path / f"{sent.besked_id}.xml").read_bytes() == b"<besked>new</besked>"
    assert leftover.read_bytes() == b"<besked>a crashed run's longer version</besked>"
    assert _tmp_names(tmp_path) == [leftover.name]


def test_a_symlink_at_the_temporary_name_is_not_followed(tmp_path, monkeypatch, kind):
    sent = message(b"<besked>new</besked>")
    outside = tmp_path / "outside"
    outside.write_bytes(b"untouched")
    drop = tmp_path / "drop"
    distributor = FileDropDistributor(drop)
    distributor.deliver(OutgoingMessage(sent.besked_id, CVR, b"<besked>old</besked>"))
    (drop / f".{sent.besked_id}.aaaaaaaa.tmp").symlink_to(outside)
    drawn = iter(["aaaaaaaa", "bbbbbbbb"])
    monkeypatch.setattr(secrets, "token_hex", lambda _: next(drawn))
    assert distributor.deliver_batch([sent]) == {0: None}
    assert outside.read_bytes() == b"untouched"
    assert (drop / f"{sent.besked_id}.xml").read_bytes() == b"<besked>new</besked>"


def test_a_batch_files_mode_does_not_depend_on_the_umask(tmp_path, kind):
    batch = [message(b"<besked>a</besked>"), message(b"<besked>b</besked>")]
    previous = os.umask(0o077)
    try:
        FileDropDistributor(tmp_path).deliver_batch(batch)
    finally:
        os.umask(previous)
    assert [stat.S_IMODE((tmp_path / f"{m.besked_id}.xml").stat().st_mode) for m in batch] == [
        0o640,
        0o640,
    ]


def test_a_file_system_without_unnamed_files_gets_named_temporary_files(tmp_path, monkeypatch):
    real_open = os.open
    refused: list[int] = []

    def no_tmpfile(path, flags, *args, **kwargs):
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            refused.append(flags)
            raise OSError(95, "Operation not supported")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_tmpfile)
    distributor = FileDropDistributor(tmp_path)
    first, second = [message(b"<besked>1</besked>")], [message(b"<besked>2</besked>")]
    assert distributor.deliver_batch(first) == {0: None}
    assert distributor.deliver_batch(second) == {0: None}
    assert len(refused) == 1  # asked once; the second batch went the named way at once
    assert all(distributor.path_for(m.besked_id).read_bytes() == m.body for m in first + second)
    assert _tmp_names(tmp_path) == []


# --- MemoryDistributor ----------------------------------------------------------------------


def test_memory_distributor_records_and_fails_on_request():
    distributor = MemoryDistributor()
    distributor.fail_next(DistributorRejected("StatusKode 41", status=41), count=2)
    for _ in range(2):
        with pytest.raises(DistributorRejected) as caught:
            distributor.deliver(message())
        assert caught.value.status == 41
    sent = message()
    distributor.deliver(sent)
    assert distributor.delivered == [sent]
    with distributor:
        pass
    assert distributor.closed


# --- the factory ----------------------------------------------------------------------------


def settings(tmp_path: Path, **distributor: object) -> Settings:
    return Settings(distributor=DistributorSettings(**distributor), base_dir=str(tmp_path))  # type: ignore[arg-type]


def test_factory_file_resolves_the_directory_against_the_settings_file(tmp_path):
    distributor = distributor_from_settings(settings(tmp_path, directory="out"))
    assert isinstance(distributor, FileDropDistributor)
    assert distributor.directory == tmp_path / "out"


def test_factory_amqp_builds_without_connecting(tmp_path):
    amqp = AmqpDistributorSettings(url="amqp://nobody:secret@127.0.0.1:1/", token_dir="tok")
    distributor = distributor_from_settings(settings(tmp_path, transport="amqp", amqp=amqp))
    assert isinstance(distributor, AmqpDistributor)
    assert distributor.connections_opened == 0
    distributor.close()


@pytest.mark.parametrize("transport", ["", "smtp", "AMQP"])
def test_factory_refuses_an_unknown_transport(tmp_path, transport):
    with pytest.raises(ConfigurationError, match="transport"):
        distributor_from_settings(settings(tmp_path, transport=transport))


def test_factory_refuses_an_unknown_token_source(tmp_path):
    amqp = AmqpDistributorSettings(token_source="kerberos")
    with pytest.raises(ConfigurationError, match="token_source"):
        distributor_from_settings(settings(tmp_path, transport="amqp", amqp=amqp))


def test_factory_sandbox_sts_needs_its_files(tmp_path):
    amqp = AmqpDistributorSettings(token_source="sandbox-sts", sts_key="sts.key")
    with pytest.raises(ConfigurationError, match="sts_cert, sts_issuer"):
        distributor_from_settings(settings(tmp_path, transport="amqp", amqp=amqp))


@pytest.mark.parametrize(
    ("url", "ca_cert", "match"),
    [
        ("http://127.0.0.1/", "", "amqp://"),
        ("amqp://127.0.0.1:5672/BF", "", "virtual_host"),
        ("amqps://127.0.0.1/", "", "ca_cert"),
        ("amqps://127.0.0.1/", "missing-ca.pem", "missing-ca.pem"),
        ("amqp://127.0.0.1:notaport/", "", "port"),
    ],
)
def test_bad_amqp_settings_are_configuration_errors(tmp_path, url, ca_cert, match):
    amqp = AmqpDistributorSettings(url=url, ca_cert=ca_cert)
    with pytest.raises(ConfigurationError, match=match):
        connection_parameters(amqp, tmp_path)


def test_amqps_trusts_only_the_configured_ca(tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    amqp = AmqpDistributorSettings(url="amqps://u:p%40ss@broker.example/", ca_cert="ca.pem")
    parameters = connection_parameters(amqp, tmp_path)
    assert parameters.port == 5671
    assert parameters.virtual_host == "BF"
    assert parameters.credentials.password == "p@ss"  # type: ignore[attr-defined]
    options = parameters.ssl_options
    assert options is not None
    assert options.server_hostname == "broker.example"
    context = options.context
    assert context.check_hostname
    # Only the configured CA: the machine's bundle is not loaded.
    assert len(context.get_ca_certs()) == 1


# --- token files and replies ----------------------------------------------------------------


def test_file_token_source_reads_the_authority_file(tmp_path):
    (tmp_path / f"{CVR}.xml").write_text("  <saml:Assertion/>\n", encoding="utf-8")
    assert FileTokenSource(tmp_path).token_for(CVR) == "<saml:Assertion/>"


def test_file_token_source_names_a_missing_file(tmp_path):
    with pytest.raises(ConfigurationError, match=str(tmp_path / "12345678.xml")):
        FileTokenSource(tmp_path).token_for("12345678")


def test_file_token_source_refuses_a_path_as_cvr(tmp_path):
    with pytest.raises(ConfigurationError, match="8 digits"):
        FileTokenSource(tmp_path).token_for("../../x")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            b'<StandardRetur xmlns="urn:oio:sagdok:3.0.0"><StatusKode>20</StatusKode>'
            b"</StandardRetur>",
            (20, None),
        ),
        (
            b'<sd:StandardRetur xmlns:sd="urn:oio:sagdok:3.0.0"><sd:StatusKode> 41 </sd:StatusKode>'
            b"<sd:FejlbeskedTekst>Token udloebet</sd:FejlbeskedTekst></sd:StandardRetur>",
            (41, "Token udloebet"),
        ),
        (
            b"<StandardRetur><StatusKode>42</StatusKode><FejlbeskedTekst>x</FejlbeskedTekst>"
            b"</StandardRetur>",
            (42, "x"),
        ),
    ],
)
def test_parse_standard_retur(reply, expected):
    assert parse_standard_retur(reply) == expected


@pytest.mark.parametrize(
    "reply",
    [b"", b"not xml", b"<StandardRetur/>", b"<StandardRetur><StatusKode>ok</StatusKode></x>"],
)
def test_parse_standard_retur_refuses_garbage(reply):
    with pytest.raises(ValueError):
        parse_standard_retur(reply)
