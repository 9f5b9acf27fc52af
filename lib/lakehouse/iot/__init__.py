"""IoT meter readings over MQTT: broker, sensor simulator, landing bridge, bronze stream."""
