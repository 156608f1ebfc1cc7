"""Client-facing answer formats: the native API, and OpenAI/Anthropic compatible shapes."""
