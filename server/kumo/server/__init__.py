"""The Kumo API server: gRPC services over the database, plus the controllers beside them."""
