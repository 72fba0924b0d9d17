"""Offline side of planllm_ros: everything that makes and measures models.

    datasets/    CrossTask, COIN, NIV loaders, the feature simulator, step descriptions
    tabletop/    the embedded default domain (a procedural tabletop world)
    episodes/    your own annotated recordings as a dataset
    train/       the run config, the two-stage trainer, checkpoints, the splits a config names
    evaluation/  scoring through the inference pipeline, and the metrics
    benchmarks/  `planllm bench`: one module per benchmark, the report writer, the shared runs
    cli/         one module per `planllm` subcommand or tool
    configs/     the training presets (YAML)

Imports `planllm_ros.model`, the runtime and export; the ROS node never imports this package.
"""
