"""CrypTen integration: compatibility, transport, transcript digests, dealer."""
