"""PlanLLM as small nn.Modules with one config tree (the paper, Eq. 1-15; docs/architecture.md)."""
