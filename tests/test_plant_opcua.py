"""The OPC UA server with real asyncua clients on loopback, encrypted (Basic256Sha256 SignAndEncrypt):
200 triggered inspections through the handshake, refusals as status codes, and the security: anonymous,
wrong password, unencrypted and untrusted clients are refused; the certificate is made once."""

from __future__ import annotations

import shutil
import stat
import time
from datetime import UTC, datetime

import pytest
from asyncua import Client, ua
from plant_support import GatedInspect, fake_inspect, wait_until
from service_support import free_port

from inspection.plant.handshake import PlcHandshake
from inspection.plant.opcua import OpcUaStation
from inspection.plant.opcua_client import OpcUaPlc
from inspection.plant.opcua_security import OpcUaSecurity
from inspection.plant.plcsim import PlcSimulator
from inspection.plant.records import ErrorCode

USER, PASSWORD = "line-plc", "correct horse"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """One server and one client certificate for the module (RSA key generation takes a while)."""
    return tmp_path_factory.mktemp("server-cert"), tmp_path_factory.mktemp("client-cert")


class Running:
    def __init__(self, certs, inspect=fake_inspect, depth=8, recipes=None, **security):
        self.core = PlcHandshake(inspect, depth=depth, recipes=recipes)
        self.core.start()
        self.server = OpcUaStation(self.core, OpcUaSecurity(certs[0], users={USER: PASSWORD}, **security),
                                   port=free_port())
        self.server.start()
        self.client_certs = certs[1]
        self.clients: list[OpcUaPlc] = []

    def plc(self, user=USER, password=PASSWORD, **kw) -> OpcUaPlc:
        plc = OpcUaPlc(self.server.endpoint, user, password, cert_dir=self.client_certs, **kw)
        self.clients.append(plc)
        return plc

    def close(self):
        for c in self.clients:
            c.close()
        self.server.stop()
        self.core.stop()


@pytest.fixture
def station(certs):
    s = Running(certs, depth=2, recipes={1: "flange", 2: "plate"})
    yield s
    s.close()


@pytest.fixture(scope="module")
def secured(certs):
    """One station for the security checks, which leave its handshake untouched."""
    s = Running(certs)
    yield s
    s.close()


def _status(excinfo) -> str:
    return ua.StatusCode(excinfo.value.code).name


def test_200_encrypted_triggered_inspections_each_answered_once_in_order(certs):
    s = Running(certs)
    acked: list[int] = []
    original = s.core.acknowledge

    def recording_ack(sequence: int = 0):
        result = original(sequence)
        acked.append(result.sequence)
        return result

    s.core.acknowledge = recording_ack  # type: ignore[method-assign]
    try:
        plc = s.plc()
        assert plc.client.security_policy.Mode == ua.MessageSecurityMode.SignAndEncrypt
        report = PlcSimulator(plc).run(count=200, rate=400, buffer_check=True)
    finally:
        s.close()
    assert report.problems == []
    assert (report.results, report.refused, report.triggers, len(report.latencies_ms)) == (208, 1, 209, 200)
    assert acked == [n for n in range(1, 210) if n != 9], "every accepted trigger acknowledged once, in order"


def test_full_buffer_and_bad_acks_answer_with_status_codes(station):
    plc = station.plc()
    core = station.core
    for i in range(2):
        seq, code = plc.call("StartInspection", ua.Variant(f"P{i}", ua.VariantType.String))
        assert (seq, code) == (i + 1, 0)
        wait_until(core, lambda i=i: core.snapshot().counters.ok + core.snapshot().counters.ng == i + 1)
    assert plc.read("VisionStateMachine.CurrentState") == "Busy"
    with pytest.raises(ua.UaStatusCodeError) as full:
        plc.call("StartInspection", ua.Variant("P2", ua.VariantType.String))
    assert _status(full) == "BadResourceUnavailable"
    assert plc.read("LastCommandError") == ErrorCode.BUFFER_FULL and plc.read("LastTriggerSequence") == 3
    assert plc.read("ResultManagement.Result.SequenceNumber") == 1, "a refusal must not overwrite"
    with pytest.raises(ua.UaStatusCodeError) as unknown:
        plc.call("AcknowledgeResult", ua.Variant(99, ua.VariantType.UInt32))
    assert _status(unknown) == "BadNotFound" and plc.read("LastCommandError") == ErrorCode.UNKNOWN_SEQUENCE
    with pytest.raises(ua.UaStatusCodeError) as order:
        plc.call("AcknowledgeResult", ua.Variant(2, ua.VariantType.UInt32))
    assert _status(order) == "BadSequenceNumberInvalid"
    assert plc.call("AcknowledgeResult", ua.Variant(1, ua.VariantType.UInt32)) is None
    assert plc.read("ResultManagement.Result.SequenceNumber") == 2
    assert plc.read("VisionStateMachine.CurrentState") == "Ready" and plc.read("LastCommandError") == 0


def test_trigger_while_inspecting_is_accepted_with_code_1_and_answered_by_an_error_result(certs):
    gated = GatedInspect()
    s = Running(certs, inspect=gated)
    try:
        plc = s.plc()
        plc.trigger("first")
        assert gated.started.wait(5)
        assert plc.trigger("second").error == ErrorCode.BUSY
        gated.release()
        wait_until(s.core, lambda: s.core.snapshot().presented is not None)
        assert plc.acknowledge(1) == 0
        v = plc.view().presented
        assert v is not None and (v.sequence, v.verdict, v.error, v.part_id) == (2, "ERROR", 1, "second")
        assert plc.read("ResultManagement.Result.ErrorMessage").startswith("trigger 2 while inspection 1")
    finally:
        gated.release(3)
        s.close()


def test_recipes_and_result_variables(station):
    plc = station.plc()
    assert plc.read("RecipeManagement.Recipes") == ["1: flange", "2: plate"]
    assert plc.call("SelectRecipe", ua.Variant(2, ua.VariantType.UInt16)) == "plate"
    with pytest.raises(ua.UaStatusCodeError) as bad:
        plc.call("SelectRecipe", ua.Variant(5, ua.VariantType.UInt16))
    assert _status(bad) == "BadNotFound" and plc.read("LastCommandError") == ErrorCode.UNKNOWN_RECIPE
    assert plc.read("RecipeManagement.ActiveRecipe") == 2
    plc.trigger("R-1")
    wait_until(station.core, lambda: station.core.snapshot().presented is not None)
    deadline = time.monotonic() + 5  # as a PLC does: read the result once ResultReady is up
    while not plc.read("ResultManagement.Result.ResultReady") and time.monotonic() < deadline:
        plc.wait_change()
    for obj in ("Result", "LastResult"):
        base = f"ResultManagement.{obj}."
        assert (plc.read(base + "PartId"), plc.read(base + "Recipe"), plc.read(base + "Verdict")) == ("R-1", 2, "NG")
        assert plc.read(base + "Score") == pytest.approx(0.001) and plc.read(base + "ModelVersion") == "fake-1"
        stamp = plc.read(base + "Timestamp")
        stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
        assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60
    plc.acknowledge(0)
    assert plc.read("ResultManagement.Result.ResultReady") is False
    assert plc.read("ResultManagement.LastResult.SequenceNumber") == 1, "the last result stays for SCADA"
    assert plc.read("Counters.TriggerCount") == 1 and plc.read("Counters.NgCount") == 1
    assert plc.read("Counters.ProcessingTimeMaxMs") >= plc.read("Counters.ProcessingTimeMinMs") > 0


def test_only_the_encrypted_endpoint_is_offered_and_plain_clients_are_refused(secured):
    plc = secured.plc()
    endpoints = plc._run(plc.client.get_endpoints())
    assert {(e.SecurityPolicyUri.rsplit("#")[-1], e.SecurityMode) for e in endpoints} == {
        ("Basic256Sha256", ua.MessageSecurityMode.SignAndEncrypt)}
    tokens = {t.TokenType for t in endpoints[0].UserIdentityTokens}
    assert tokens == {ua.UserTokenType.UserName}, "anonymous must be off by default"
    with pytest.raises(ua.UaError, match="No matching endpoints"):
        secured.plc(encrypt=False)


def test_anonymous_and_wrong_password_are_refused(secured):
    with pytest.raises(ua.UaStatusCodeError) as anonymous:
        secured.plc(user=None)
    assert _status(anonymous) in ("BadIdentityTokenRejected", "BadUserAccessDenied")
    with pytest.raises(ua.UaStatusCodeError) as wrong:
        secured.plc(password="guess")
    assert _status(wrong) == "BadUserAccessDenied"


def test_a_lax_client_on_an_unencrypted_channel_gets_no_session(secured, monkeypatch):
    """asyncua's server opens a None channel for discovery; a client that ignores the offered endpoints
    must still not get a session on it."""
    monkeypatch.setattr(Client, "find_endpoint", staticmethod(lambda endpoints, mode, uri: endpoints[0]))
    with pytest.raises(ua.UaStatusCodeError) as refused:
        secured.plc(encrypt=False)
    assert _status(refused) == "BadUserAccessDenied"


def test_untrusted_client_certificate_refused_until_it_is_trusted(certs, tmp_path):
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    s = Running(certs, trusted_clients=trusted)
    try:
        with pytest.raises(ua.UaStatusCodeError) as untrusted:
            s.plc()
        assert _status(untrusted) == "BadCertificateUntrusted"
        shutil.copy(certs[1] / "client_cert.der", trusted / "plc-sim.der")
        assert s.plc().view().ready
    finally:
        s.close()


def test_certificate_is_created_on_first_start_and_reused(tmp_path, certs):
    first = Running((tmp_path / "pki", certs[1]))
    cert = first.server.certificate
    first.close()
    assert cert is not None and cert.created and len(cert.sha1) == 40
    assert stat.S_IMODE(cert.key_file.stat().st_mode) == 0o600
    second = Running((tmp_path / "pki", certs[1]))
    again = second.server.certificate
    second.close()
    assert again is not None and not again.created and again.sha1 == cert.sha1


def test_a_subscribed_scada_client_is_told_of_every_result(station):
    """SCADA subscribes to LastResult instead of polling; each result arrives as a data change."""
    import threading

    plc = station.plc()
    seen: list[int] = []
    changed = threading.Condition()

    class Handler:
        def datachange_notification(self, node, val, data):
            with changed:
                seen.append(val)
                changed.notify_all()

    async def subscribe():
        sub = await plc.client.create_subscription(20, Handler())
        await sub.subscribe_data_change(plc.node("ResultManagement.LastResult.SequenceNumber"))
        return sub

    sub = plc._run(subscribe())
    for i in range(1, 6):
        answer = plc.trigger(f"S{i}")
        with changed:
            assert changed.wait_for(lambda n=answer.sequence: n in seen, timeout=5), seen
        assert plc.acknowledge(answer.sequence) == 0
    plc._run(sub.delete())
    assert [v for v in seen if v] == [1, 2, 3, 4, 5]
