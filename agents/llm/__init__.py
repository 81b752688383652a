"""Model-backed agents: tool schemas, prompts, backends, cassette and pricing."""
