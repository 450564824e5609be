"""The gRPC servicers: each validates, authorizes against the resource, persists and returns."""
