"""AWS emulated on a laptop: the local stack (moto + the webhook), DuckDB for Athena, the synthetic chat, the demo."""
