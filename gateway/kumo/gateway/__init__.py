"""The REST gateway (ASGI): native REST derived from the contracts' HTTP bindings, and the
OpenStack and AWS EC2 dialects over the same gRPC services. Arrives with the gateway
issues; nothing here yet."""
