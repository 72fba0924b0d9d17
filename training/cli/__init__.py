"""The command-line side of training: one module per `planllm` subcommand or tool (arguments,
printing, exit codes); the code they call lives in the other folders of training/."""
