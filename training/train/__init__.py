"""Training a PlanLLM model: the run config, the two-stage trainer, its stage and freeze policy,
checkpoints, multi-process set-up, the built-in LLM's pretraining, logging and the splits a
config names."""
