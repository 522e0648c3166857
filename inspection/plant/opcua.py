"""The OPC UA server of the station (asyncua), modelled on OPC 40100 "Machine Vision".

Address space (namespace ``urn:edge-inspection:plant``; string node ids ``VisionSystem.<path>``)::

    Objects/VisionSystem
      VisionStateMachine/CurrentState        String   Preoperational | Ready | Busy | Error
      VisionStateMachine/CurrentStateNumber  UInt16   0 | 1 | 2 | 3
      StartInspection(PartId: String) -> (SequenceNumber: UInt32, ErrorCode: UInt16)
      SelectRecipe(RecipeNumber: UInt16) -> RecipeName: String
      AcknowledgeResult(SequenceNumber: UInt32)            0 = whichever result is presented
      ResultManagement/Result/...            the presented (oldest unacknowledged) result: the handshake
      ResultManagement/LastResult/...        the most recent completed result (for SCADA)
          ResultReady Boolean (Result only), SequenceNumber UInt32, PartId String, Verdict String (OK|NG|ERROR),
          Score Double, Threshold Double, Timestamp DateTime, ModelVersion String, Recipe UInt16,
          ErrorCode UInt16, ErrorMessage String, ProcessingTimeMs Double
      ResultManagement/BufferedResults, BufferDepth               UInt32
      RecipeManagement/ActiveRecipe UInt16, RecipeManagement/Recipes String[] ("1: flange", ...)
      Counters/TriggerCount, OkCount, NgCount, ErrorCount, RefusedCount           UInt32
      Counters/ProcessingTimeMinMs, ProcessingTimeMeanMs, ProcessingTimeMaxMs      Double
      LastTriggerSequence UInt32, LastCommandError UInt16, LastCommandErrorMessage String

Refused calls answer with an OPC UA status code (and set LastCommandError with the numeric code shared with
Modbus): buffer full BadResourceUnavailable, not ready BadInvalidState, bad part id BadInvalidArgument,
unknown sequence or recipe BadNotFound, ack out of order BadSequenceNumberInvalid. A trigger while an
inspection runs is accepted (ErrorCode 1) and answered by an error result.

Security: see :mod:`inspection.plant.opcua_security` (Basic256Sha256 SignAndEncrypt, username/password,
anonymous off by default).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime
from typing import Any

from asyncua import Node, Server, ua

from inspection.plant.handshake import PlcHandshake
from inspection.plant.opcua_security import (
    APP_URI,
    OpcUaSecurity,
    PasswordUsers,
    ServerCertificate,
    TrustedClients,
    ensure_certificate,
)
from inspection.plant.records import ErrorCode, HandshakeError, HandshakeSnapshot, TriggerResult

log = logging.getLogger(__name__)
NAMESPACE = "urn:edge-inspection:plant"
_V = ua.VariantType
STATUS_OF = {ErrorCode.BUFFER_FULL: ua.StatusCodes.BadResourceUnavailable,
             ErrorCode.NOT_READY: ua.StatusCodes.BadInvalidState,
             ErrorCode.BAD_PART_ID: ua.StatusCodes.BadInvalidArgument,
             ErrorCode.UNKNOWN_SEQUENCE: ua.StatusCodes.BadNotFound,
             ErrorCode.UNKNOWN_RECIPE: ua.StatusCodes.BadNotFound,
             ErrorCode.ACK_OUT_OF_ORDER: ua.StatusCodes.BadSequenceNumberInvalid}
STATE_NAMES = ("Preoperational", "Ready", "Busy", "Error")
_RESULT_VARS = {"SequenceNumber": _V.UInt32, "PartId": _V.String, "Verdict": _V.String, "Score": _V.Double,
                "Threshold": _V.Double, "Timestamp": _V.DateTime, "ModelVersion": _V.String, "Recipe": _V.UInt16,
                "ErrorCode": _V.UInt16, "ErrorMessage": _V.String, "ProcessingTimeMs": _V.Double}
_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_READY = "ResultManagement.Result.ResultReady"


def _result_values(prefix: str, r: TriggerResult | None) -> dict[str, Any]:
    if r is None:
        vals: dict[str, Any] = {"SequenceNumber": 0, "PartId": "", "Verdict": "", "Score": 0.0, "Threshold": 0.0,
                                "Timestamp": _EPOCH, "ModelVersion": "", "Recipe": 0, "ErrorCode": 0,
                                "ErrorMessage": "", "ProcessingTimeMs": 0.0}
    else:
        vals = {"SequenceNumber": r.sequence, "PartId": r.part_id, "Verdict": r.verdict, "Score": r.score,
                "Threshold": r.threshold, "Timestamp": r.completed_at, "ModelVersion": r.model_version,
                "Recipe": r.recipe, "ErrorCode": int(r.error), "ErrorMessage": r.message if r.error else "",
                "ProcessingTimeMs": r.processing_ms}
    return {f"{prefix}.{k}": v for k, v in vals.items()}


def snapshot_values(snap: HandshakeSnapshot) -> dict[str, Any]:
    """Every variable's value (by its path under VisionSystem) for one snapshot."""
    c = snap.counters
    values: dict[str, Any] = {
        "VisionStateMachine.CurrentState": STATE_NAMES[snap.state],
        "VisionStateMachine.CurrentStateNumber": int(snap.state),
        _READY: snap.presented is not None,
        **_result_values("ResultManagement.Result", snap.presented),
        **_result_values("ResultManagement.LastResult", snap.last),
        "ResultManagement.BufferedResults": snap.buffered, "ResultManagement.BufferDepth": snap.depth,
        "RecipeManagement.ActiveRecipe": snap.recipe,
        "Counters.TriggerCount": c.triggers, "Counters.OkCount": c.ok, "Counters.NgCount": c.ng,
        "Counters.ErrorCount": c.errors, "Counters.RefusedCount": c.refused,
        "Counters.ProcessingTimeMinMs": c.processing_ms_min, "Counters.ProcessingTimeMeanMs": c.processing_ms_mean,
        "Counters.ProcessingTimeMaxMs": c.processing_ms_max,
        "LastTriggerSequence": snap.last_trigger.sequence if snap.last_trigger else 0,
        "LastCommandError": int(snap.last_error), "LastCommandErrorMessage": snap.last_error_message}
    return values


def _types() -> dict[str, ua.VariantType]:
    types = {"VisionStateMachine.CurrentState": _V.String, "VisionStateMachine.CurrentStateNumber": _V.UInt16,
             "ResultManagement.Result.ResultReady": _V.Boolean, "ResultManagement.BufferedResults": _V.UInt32,
             "ResultManagement.BufferDepth": _V.UInt32, "RecipeManagement.ActiveRecipe": _V.UInt16,
             "LastTriggerSequence": _V.UInt32, "LastCommandError": _V.UInt16, "LastCommandErrorMessage": _V.String}
    for obj in ("Result", "LastResult"):
        types |= {f"ResultManagement.{obj}.{k}": t for k, t in _RESULT_VARS.items()}
    for name in ("TriggerCount", "OkCount", "NgCount", "ErrorCount", "RefusedCount"):
        types[f"Counters.{name}"] = _V.UInt32
    for name in ("Min", "Mean", "Max"):
        types[f"Counters.ProcessingTime{name}Ms"] = _V.Double
    return types


VARIABLE_TYPES = _types()


def node_id(ns: int, path: str) -> ua.NodeId:
    return ua.NodeId(ua.String(f"VisionSystem.{path}" if path else "VisionSystem"), ua.Int16(ns))


class OpcUaStation:
    """The handshake as an OPC UA VisionSystem, served from its own thread. ``start()`` returns once it
    listens; ``certificate`` then holds the server certificate (and whether it was just created)."""

    def __init__(self, core: PlcHandshake, security: OpcUaSecurity, host: str = "127.0.0.1", port: int = 4840):
        self.core, self.security, self.host, self.port = core, security, host, port
        self.endpoint = f"opc.tcp://{host}:{port}/inspection/"
        self.certificate: ServerCertificate | None = None
        self._nodes: dict[str, Node] = {}
        self._shown: dict[str, Any] = {}
        self._ns = 0
        self._ua: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._dirty: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    # -- serving --------------------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), name="opcua-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"OPC UA server on {self.endpoint} did not start within {timeout:g} s")
        if self._error is not None:
            raise OSError(f"OPC UA server cannot start on {self.endpoint}: {self._error}")

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop and self._stop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop, self._dirty = asyncio.Event(), asyncio.Event()
        try:
            server = await self._make_server()
            await self._refresh()
            await server.start()
        except Exception as exc:  # asyncua raises OSError and others when it cannot bind or set up
            self._error = exc
            self._ready.set()
            return
        self.core.subscribe(self._mark_dirty)
        await self._refresh()
        self._ready.set()
        log.info("OPC UA server on %s", self.endpoint)
        try:
            while not self._stop.is_set():
                waiter = asyncio.ensure_future(self._dirty.wait())
                stopper = asyncio.ensure_future(self._stop.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                self._dirty.clear()
                await self._refresh()
        finally:
            self.core.unsubscribe(self._mark_dirty)
            await server.stop()

    def _mark_dirty(self) -> None:
        if self._loop and self._dirty:
            self._loop.call_soon_threadsafe(self._dirty.set)

    async def _make_server(self) -> Server:
        sec = self.security
        server = Server(user_manager=PasswordUsers(sec.users, sec.allow_anonymous, sec.allow_unencrypted))
        await server.init()
        self._ua = server
        server.set_endpoint(self.endpoint)
        server.set_server_name("edge-inspection vision system")
        await server.set_application_uri(APP_URI)
        self.certificate = cert = await ensure_certificate(sec.cert_dir)
        await server.load_certificate(cert.cert_file)
        await server.load_private_key(cert.key_file)
        policies = [ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt]
        if sec.allow_unencrypted:
            policies.append(ua.SecurityPolicyType.NoSecurity)
        server.set_security_policy(policies)
        tokens: list[type] = [ua.UserNameIdentityToken] if sec.users else []
        if sec.allow_anonymous:
            tokens.append(ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        if sec.trusted_clients is not None:
            server.set_certificate_validator(TrustedClients(sec.trusted_clients))
        self._ns = await server.register_namespace(NAMESPACE)
        await self._build(server)
        return server

    # -- the address space ----------------------------------------------------------------------------
    async def _build(self, server: Server) -> None:
        ns = self._ns
        vs = await server.nodes.objects.add_object(node_id(ns, ""), ua.QualifiedName("VisionSystem", ns))
        folders: dict[str, Node] = {"": vs}
        for path in VARIABLE_TYPES:
            parts = path.split(".")
            for depth in range(1, len(parts)):
                key = ".".join(parts[:depth])
                if key not in folders:
                    folders[key] = await folders[".".join(parts[:depth - 1])].add_object(
                        node_id(ns, key), ua.QualifiedName(parts[depth - 1], ns))
        initial = snapshot_values(self.core.snapshot())
        for path, vtype in VARIABLE_TYPES.items():
            parent = folders[path.rsplit(".", 1)[0] if "." in path else ""]
            self._nodes[path] = await parent.add_variable(node_id(ns, path), ua.QualifiedName(path.rsplit(".")[-1], ns),
                                                          ua.Variant(initial[path], vtype))
        recipes = [f"{n}: {name}" for n, name in sorted(self.core.recipes.items())]
        await folders["RecipeManagement"].add_variable(node_id(ns, "RecipeManagement.Recipes"),
                                                       ua.QualifiedName("Recipes", ns), ua.Variant(recipes, _V.String))
        await self._methods(vs)

    async def _methods(self, vs: Node) -> None:
        ns = self._ns

        def arg(name: str, vtype: ua.VariantType, text: str) -> ua.Argument:
            return ua.Argument(Name=name, DataType=ua.NodeId(ua.Int32(vtype.value)), ValueRank=-1,
                               Description=ua.LocalizedText(text))

        await vs.add_method(node_id(ns, "StartInspection"), ua.QualifiedName("StartInspection", ns),
                            self._start_inspection, [arg("PartId", _V.String, "the part's id, up to 32 ASCII")],
                            [arg("SequenceNumber", _V.UInt32, "the trigger's number"),
                             arg("ErrorCode", _V.UInt16, "0, or 1 when busy (an error result follows)")])
        await vs.add_method(node_id(ns, "SelectRecipe"), ua.QualifiedName("SelectRecipe", ns), self._select_recipe,
                            [arg("RecipeNumber", _V.UInt16, "one of RecipeManagement/Recipes")],
                            [arg("RecipeName", _V.String, "the recipe now active")])
        await vs.add_method(node_id(ns, "AcknowledgeResult"), ua.QualifiedName("AcknowledgeResult", ns),
                            self._acknowledge, [arg("SequenceNumber", _V.UInt32, "the presented result; 0 = it")], [])

    async def _start_inspection(self, parent: ua.NodeId, part_id: ua.Variant) -> list[ua.Variant] | ua.StatusCode:
        answer = self.core.trigger(str(part_id.Value or ""))
        await self._refresh()  # the caller reads the variables as they are after its call
        if not answer.accepted:
            return ua.StatusCode(ua.UInt32(STATUS_OF[answer.error]))
        return [ua.Variant(answer.sequence, _V.UInt32), ua.Variant(int(answer.error), _V.UInt16)]

    async def _select_recipe(self, parent: ua.NodeId, number: ua.Variant) -> list[ua.Variant] | ua.StatusCode:
        try:
            return [ua.Variant(self.core.select_recipe(int(number.Value)), _V.String)]
        except HandshakeError as exc:
            return ua.StatusCode(ua.UInt32(STATUS_OF[exc.code]))
        finally:
            await self._refresh()

    async def _acknowledge(self, parent: ua.NodeId, sequence: ua.Variant) -> list[ua.Variant] | ua.StatusCode:
        try:
            self.core.acknowledge(int(sequence.Value))
        except HandshakeError as exc:
            return ua.StatusCode(ua.UInt32(STATUS_OF[exc.code]))
        finally:
            await self._refresh()
        return []

    async def _refresh(self) -> None:
        """Write the variables whose values changed since they were last shown (the server's direct write:
        no per-write session and permission round, several times faster than Node.write_value)."""
        assert self._ua is not None
        stamp = ua.DateTime.now(UTC)
        changed = [(p, v) for p, v in snapshot_values(self.core.snapshot()).items() if self._shown.get(p, ...) != v]
        # ResultReady goes up only after the result's values are written and down before they are cleared,
        # so a PLC that reads on its change never sees a half-written result.
        changed.sort(key=lambda pv: 0 if pv[0] != _READY else (1 if pv[1] else -1))
        for path, value in changed:
            await self._ua.write_attribute_value(self._nodes[path].nodeid, ua.DataValue(
                ua.Variant(value, VARIABLE_TYPES[path]), SourceTimestamp=stamp, ServerTimestamp=stamp))
            self._shown[path] = value
