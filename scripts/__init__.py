"""Developer tooling: the local dev stack (`make run`) and its helpers."""
