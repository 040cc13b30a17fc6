"""Party-to-party networking: mutual TLS over gRPC, channels to the peers, listen ports, and
the contract between the party daemon and the services it runs."""
