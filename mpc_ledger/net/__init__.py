"""Party-to-party networking: mutually authenticated TLS over gRPC."""
