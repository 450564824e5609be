"""gRPC server interceptors, one concern each, outermost first:
request id, tracing, error mapping, authentication, authorization, validation."""
