"""Runs Pulumi programs and dynamic providers without the Pulumi CLI: real provider processes over gRPC."""
