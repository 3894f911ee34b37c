"""The sans-I/O detection engine: documents in, alerts out, no clocks, no sockets."""
