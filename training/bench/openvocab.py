"""`planllm bench openvocab`: the paper's Table 3 analogue on the tabletop world.

Models are trained on the seen tasks with the original step labels (the same runs as the
quality benchmark) and tested on label sets and tasks they never saw:

- closed set: test episodes, the training labels;
- paraphrased labels: the same test episodes, every label replaced by a paraphrase;
- novel tasks: held-out tasks (made of seen steps), the training labels;
- novel tasks + paraphrased labels: train on one label set and one task set, test on another.

Open-vocabulary plans are label retrievals with the frozen text encoder
(planllm_ros.model.openvocab.retrieve_labels). Rows: the full model retrieving from its LLM
captions (the paper's method), the full model and the no-LLM baseline retrieving from the label
texts of their closed-set step-decoder plans (Viterbi; the full model's candidates re-ranked by
its LLM, decoding.llm_weight). On the closed set a label retrieves itself, so those rows equal
closed-set decoding there.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from training.bench.report import Table, bar_plot, mean_std, write_report
from training.bench.runs import QUICK_OVERRIDES, VARIANTS, add_set_argument, run_config, run_directory, trained_model
from training.evaluate import EvalModel, predict_split, step_ids
from training.metrics import procedure_metrics
from training.splits import load_split

SETTINGS = {
    "closed": "closed set (test, training labels)",
    "paraphrase": "paraphrased labels",
    "novel": "novel tasks",
    "novel-paraphrase": "novel tasks + paraphrased labels",
}
ROWS = {
    "captions": ("full", "Full model: LLM captions -> labels"),
    "full-steps": ("full", "Full model: step decoder -> labels"),
    "baseline": ("no-llm", "w/o LLM baseline: step decoder -> labels"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_set_argument(parser)
    parser.add_argument("--horizon", type=int, default=3)
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="training seeds (default: 0 1 2; quick: 0)")
    parser.add_argument("--work-dir", type=Path, default=Path("runs/bench"),
                        help="training runs (shared with `planllm bench quality`; finished runs are reused)")


def test_sets(config) -> dict[str, tuple[object, list[str]]]:
    """{setting: (dataset with ground-truth ids, candidate label texts)}."""
    from training.tabletop import vocabulary

    test, novel = load_split(config.data, "test", config.visual()), load_split(config.data, "novel", config.visual())
    paraphrases = list(vocabulary(paraphrase=True).labels)
    return {"closed": (test, list(test.vocab.labels)), "paraphrase": (test, paraphrases),
            "novel": (novel, list(novel.vocab.labels)),
            "novel-paraphrase": (dataclasses.replace(novel, vocab=vocabulary(paraphrase=True)), paraphrases)}


def retrieval_metrics(loaded: EvalModel, dataset, candidates: list[str], source: str) -> dict[str, float]:
    """Metrics of the labels retrieved from the model's captions ("captions") or from the label
    texts of its closed-set Viterbi plan ("steps")."""
    from planllm_ros.model.openvocab import retrieve_labels

    model = loaded.model
    batches = predict_split(loaded, dataset, "viterbi", captions=source == "captions")
    texts = [c for b in batches for sample in b.captions for c in sample] if source == "captions" else \
        [model.step_labels[i] for i in step_ids(batches).reshape(-1)]
    retrieved = np.asarray(retrieve_labels(texts, candidates, model.text_encoder()), dtype=np.int64)
    gt = np.stack(dataset.sequences()).astype(np.int64)
    return procedure_metrics(retrieved.reshape(gt.shape), gt)


def run(args: argparse.Namespace, command: str) -> list[Path]:
    seeds = args.seeds if args.seeds is not None else ([0] if args.quick else [0, 1, 2])
    base = [*(QUICK_OVERRIDES if args.quick else ()), *args.overrides]
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    for seed in seeds:
        models = {}
        for variant in ("full", "no-llm"):
            config = run_config("tabletop-tiny", [*base, f"data.horizon={args.horizon}", f"train.seed={seed}",
                                                  *VARIANTS[variant]])
            models[variant] = (config, trained_model(config, run_directory(args.work_dir, args.quick, "tabletop",
                                                                           args.horizon, variant, seed)))
        sets = test_sets(models["full"][0])
        for row, (variant, _) in ROWS.items():
            for setting, (dataset, candidates) in sets.items():
                source = "captions" if row == "captions" else "steps"
                metrics = retrieval_metrics(models[variant][1], dataset, candidates, source)
                results.setdefault((row, setting), []).append(metrics)
                print(f"openvocab seed {seed} {row} {setting}: SR {metrics['sr']:.2f} mAcc {metrics['macc']:.2f}",
                      flush=True)
    stem = "openvocab-quick" if args.quick else "openvocab"
    tables = [Table(f"tabletop, T={args.horizon}: {title} (mean ± std over seeds, percent)",
                    ["method", *SETTINGS.values()],
                    [[ROWS[row][1], *[mean_std([m[metric] for m in results[(row, s)]]) for s in SETTINGS]] for row in ROWS])
              for metric, title in (("sr", "SR"), ("macc", "mAcc"), ("miou_set", "mIoU (set)"))]
    series = {ROWS[row][1]: [float(np.mean([m["sr"] for m in results[(row, s)]])) for s in SETTINGS] for row in ROWS}
    errors = {ROWS[row][1]: [float(np.std([m["sr"] for m in results[(row, s)]])) for s in SETTINGS] for row in ROWS}
    plot = bar_plot(args.out / f"{stem}.png", f"Open-vocabulary SR, tabletop T={args.horizon}",
                    list(SETTINGS.values()), series, "SR (%)", errors)
    notes = [
        f"training: `tabletop-tiny` (training/configs/){' with ' + ' '.join(base) if base else ''}, seen tasks, "
        f"original labels; full model and w/o LLM (variant.use_llm=false); runs in `{args.work_dir}/`",
        "retrieval: frozen MiniLM text encoder, cosine similarity, best label per position "
        "(planllm_ros.model.openvocab.retrieve_labels); step-decoder rows retrieve from the label texts of the "
        "Viterbi plan",
        "novel tasks are held-out tasks made of seen steps; paraphrased labels keep the step ids, so one ground truth "
        "scores every setting",
    ]
    report = write_report(args.out / f"{stem}.md", "Open vocabulary (Table 3 analogue)", command, seeds, tables,
                          notes, plot)
    return [report, plot]
