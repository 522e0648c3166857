"""The plant side: the PLC trigger handshake (trigger, result buffer, acknowledge, recipe) and the protocol
servers that expose it to a PLC or SCADA (Modbus TCP, OPC UA), with the simulated PLC that checks them.

``records`` holds the typed boundary (Trigger, TriggerResult, error codes), ``handshake`` the protocol-free
core, ``modbus`` and ``opcua`` the servers, ``station`` the model-backed inspect callable, ``plcsim`` the
simulated PLC, ``config`` the ``[plant]`` section of the station config. Documented in the main README
("The plant side").
"""
