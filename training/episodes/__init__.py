"""Your own procedures: recordings annotated with their steps, imported into a training dataset.

- layout.py: the source folder a team writes (recordings, `<episode>.steps.csv`, labels.txt,
  the optional episodes.csv manifest and descriptions.json);
- frames.py: a recording's frames (rosbag2 image topic or a folder of timestamped frames);
- features.py: the backbone's states around each step's start and end, cached;
- dataset.py: `import_dataset` (checked, atomic) and `load_episodes` (what `data.dataset:
  episodes` trains on; splits in training/train/splits.py);
- baseline.py: the nearest-neighbour planner every trained model must beat;
- cli.py: `planllm data episodes import|validate|stats|preview|from-demo-bag`.
"""
from training.episodes.dataset import import_dataset, load_episodes
from training.episodes.features import backbone_arguments

__all__ = ["backbone_arguments", "import_dataset", "load_episodes"]
