"""Business rules: each service takes plain arguments and owns its transaction."""
