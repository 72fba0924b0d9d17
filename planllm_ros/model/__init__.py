"""PlanLLM as small nn.Modules with one config tree (see DESIGN §2 and the paper, Eq. 1-15)."""
