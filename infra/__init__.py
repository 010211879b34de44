"""Running Tonglu: configuration, the local stack, the CLI, benchmarks and deployment files."""
