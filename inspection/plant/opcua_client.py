"""A PLC's (or SCADA's) side of the OPC UA handshake: an asyncua client on its own event-loop thread, with a
blocking interface for the simulated PLC and the tests. Encrypted (Basic256Sha256 SignAndEncrypt) unless
``encrypt=False``; its own self-signed client certificate is created in ``cert_dir`` on first use."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from asyncua import Client, Node, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

from inspection.plant.opcua import NAMESPACE, node_id
from inspection.plant.opcua_security import ensure_client_certificate
from inspection.plant.plc_view import PresentedView, StationView
from inspection.plant.records import ErrorCode, TriggerAnswer

CLIENT_URI = "urn:edge-inspection:plant:plc-sim"
T = TypeVar("T")
_VIEW = ("ResultManagement.Result.ResultReady", "ResultManagement.Result.SequenceNumber",
         "ResultManagement.Result.Verdict", "ResultManagement.Result.ErrorCode", "ResultManagement.Result.PartId",
         "ResultManagement.Result.Score", "VisionStateMachine.CurrentStateNumber", "ResultManagement.BufferedResults",
         "ResultManagement.BufferDepth", "LastCommandError")
_TRIGGER_REFUSALS = {ua.StatusCodes.BadResourceUnavailable: ErrorCode.BUFFER_FULL,
                     ua.StatusCodes.BadInvalidState: ErrorCode.NOT_READY,
                     ua.StatusCodes.BadInvalidArgument: ErrorCode.BAD_PART_ID}
_ACK_REFUSALS = {ua.StatusCodes.BadNotFound: ErrorCode.UNKNOWN_SEQUENCE,
                 ua.StatusCodes.BadSequenceNumberInvalid: ErrorCode.ACK_OUT_OF_ORDER}


class _Notify:
    """asyncua subscription handler: keeps each watched variable's latest notified value and sets the event
    the PLC loop waits on."""

    def __init__(self, event: threading.Event):
        self.event = event
        self.values: dict[ua.NodeId, Any] = {}
        self.lock = threading.Lock()

    def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        with self.lock:
            self.values[node.nodeid] = val
        self.event.set()

    def latest(self, nodes: list[Node]) -> list[Any] | None:
        """The latest notified values of ``nodes``, or None until every one has been notified once."""
        with self.lock:
            if any(n.nodeid not in self.values for n in nodes):
                return None
            return [self.values[n.nodeid] for n in nodes]


class OpcUaPlc:
    """Connects at construction; raises the asyncua error (e.g. BadUserAccessDenied) when refused."""

    name = "opcua"

    def __init__(self, endpoint: str, user: str | None = None, password: str | None = None,
                 cert_dir: Path | None = None, encrypt: bool = True, timeout: float = 5.0):
        self.endpoint, self.timeout = endpoint, timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="opcua-client", daemon=True)
        self._thread.start()
        self._changed = threading.Event()
        self.client = Client(endpoint, timeout=timeout)
        self.client.application_uri = CLIENT_URI
        try:
            self._run(self._connect(user, password, cert_dir, encrypt))
        except BaseException:
            self._shutdown()
            raise
        self.last_status: str = "Good"

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.timeout * 3)

    async def _connect(self, user: str | None, password: str | None, cert_dir: Path | None, encrypt: bool) -> None:
        if encrypt:
            if cert_dir is None:
                raise ValueError("an encrypted OPC UA connection needs a folder for the client certificate")
            key, cert = await ensure_client_certificate(cert_dir, CLIENT_URI)
            await self.client.set_security(SecurityPolicyBasic256Sha256, str(cert), str(key),
                                           mode=ua.MessageSecurityMode.SignAndEncrypt)
        if user is not None:
            self.client.set_user(user)
            self.client.set_password(password or "")
        await self.client.connect()
        ns = await self.client.get_namespace_index(NAMESPACE)
        self._ns = ns
        self.vision_system = self.client.get_node(node_id(ns, ""))
        self._view_nodes = [self.client.get_node(node_id(ns, p)) for p in _VIEW]
        # publishing interval 0: the server sends each data change at once (event-driven, no polling)
        self._notified = _Notify(self._changed)
        subscription = await self.client.create_subscription(0, self._notified)
        await subscription.subscribe_data_change(self._view_nodes)

    def node(self, path: str) -> Node:
        return self.client.get_node(node_id(self._ns, path))

    def read(self, path: str) -> Any:
        return self._run(self.node(path).read_value())

    def call(self, method: str, *args: ua.Variant) -> Any:
        """Call a VisionSystem method; a refusal raises ua.UaStatusCodeError."""
        return self._run(self.vision_system.call_method(node_id(self._ns, method), *args))

    def _refused(self, exc: ua.UaStatusCodeError, table: dict[int, ErrorCode]) -> ErrorCode:
        self.last_status = ua.StatusCode(exc.code).name
        if exc.code not in table:
            raise exc
        return table[exc.code]

    def trigger(self, part_id: str) -> TriggerAnswer:
        try:
            seq, code = self.call("StartInspection", ua.Variant(part_id, ua.VariantType.String))
        except ua.UaStatusCodeError as exc:
            error = self._refused(exc, _TRIGGER_REFUSALS)
            return TriggerAnswer(int(self.read("LastTriggerSequence")), error, self.last_status)
        self.last_status = "Good"
        return TriggerAnswer(int(seq), ErrorCode(code))

    def acknowledge(self, sequence: int) -> int:
        try:
            self.call("AcknowledgeResult", ua.Variant(sequence, ua.VariantType.UInt32))
        except ua.UaStatusCodeError as exc:
            return int(self._refused(exc, _ACK_REFUSALS))
        self.last_status = "Good"
        return 0

    def select_recipe(self, number: int) -> int:
        try:
            self.call("SelectRecipe", ua.Variant(number, ua.VariantType.UInt16))
        except ua.UaStatusCodeError as exc:
            return int(self._refused(exc, {ua.StatusCodes.BadNotFound: ErrorCode.UNKNOWN_RECIPE}))
        self.last_status = "Good"
        return 0

    def wait_change(self) -> None:
        """Block until the station reports a change of what :meth:`view` shows (or 0.25 s pass)."""
        self._changed.wait(0.25)

    def view(self) -> StationView:
        self._changed.clear()
        return self._as_view(self._run(self.client.read_values(self._view_nodes)))

    def reported(self) -> StationView:
        """The view as the latest data-change notifications carried it, without a read (what a PLC acts on:
        the station writes Result Ready after the result's values, so a notified Result Ready comes with
        them). It may lag a command the PLC just called; :meth:`view` reads the values afresh."""
        self._changed.clear()
        values = self._notified.latest(self._view_nodes)
        return self.view() if values is None else self._as_view(values)

    @staticmethod
    def _as_view(values: list[Any]) -> StationView:
        ready, seq, verdict, error, part, score, state, buffered, depth, cmd = values
        presented = PresentedView(int(seq), verdict, int(error), part, float(score)) if ready else None
        return StationView(ready=state == 1, busy=state == 2, state=int(state), buffered=int(buffered),
                           depth=int(depth), command_error=int(cmd), presented=presented)

    def close(self) -> None:
        try:
            self._run(self.client.disconnect())
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
