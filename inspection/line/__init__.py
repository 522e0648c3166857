"""The line runner on the edge box: the station's config, its capture/inference/publish stages, the durable
outbox, the forwarders to the results service and MQTT, local images, and the station's metrics and status."""
