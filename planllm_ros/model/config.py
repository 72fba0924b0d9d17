"""One dataclass tree configures a PlanLLM model; it is saved (as JSON) inside every checkpoint.

`PlanLLMConfig.from_dict(config.to_dict())` round-trips exactly, through JSON or YAML. Unknown
keys and values of the wrong type raise `ConfigError` naming the key path
(planllm_ros.config_tree), so a typo in a YAML file is caught at load time instead of silently
falling back to a default.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from planllm_ros.config_tree import ConfigError, build

PLANNING_MODES = ("fused", "llm_only", "step_only")


@dataclass
class VisualConfig:
    """Visual state encoder E_v = p_v(f_v(.)) (Eq. 1) over sets of visual tokens.

    An observation is a set of `num_tokens` tokens of `feature_dim` channels: the frozen
    backbone's spatial map at block `layer` (planllm_ros/model/backbone.py), or one token for
    precomputed per-second dataset features (S3D). backbone: the frozen image backbone run on
    uint8 image inputs ("mobilenet_v2", "open_clip"); None means the model takes features only.
    pool_tokens: average each observation's tokens into one before projecting (the one-vector
    model; it then accepts any number of input tokens).
    merge: after projecting each location, average each merge x merge block of the (square)
    map into one token: the projection still sees every 16-pixel cell, the attention
    downstream reads merge^2 times fewer tokens (training time is mostly spent there).
    state_change: add per-location change tokens p_delta(f_v(goal) - f_v(start)) beside the
    start and goal tokens (VisualStateEncoder). Not in the paper: frozen features are dominated
    by the scene, which start and goal share; what the steps did is in the difference. Adopted
    before the evaluation protocol existed; measured on val since (tabletop-tiny, T=3, 3 seeds;
    bench/results/quality-additions): +1.4 val SR with them, not distinguishable from none (95 %
    CI [-0.1, +2.9]). Kept: the evidence does not favour dropping them, and dropping them
    would change every trained model.
    """

    feature_dim: int = 1280
    num_tokens: int = 1
    backbone: str | None = "mobilenet_v2"
    layer: int = -1
    pool_tokens: bool = False
    merge: int = 1
    state_change: bool = True
    backbone_checkpoint: str | None = None
    open_clip_model: str = "ViT-B-32"


@dataclass
class TextConfig:
    """Frozen language encoder E_l (Eq. 3) of the descriptions, captions and candidate labels."""

    encoder: str = "minilm"
    checkpoint: str | None = None
    open_clip_model: str = "ViT-B-32"
    dim: int = 384


@dataclass
class QFormerConfig:
    """MIM Q-Former (Eq. 5). With `checkpoint` (a local BLIP-2 directory) the architecture
    fields come from the checkpoint's own config and these sizes are ignored."""

    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 256
    hidden_size: int = 128
    cross_attention_frequency: int = 1
    dropout: float = 0.1
    checkpoint: str | None = None


@dataclass
class LoRAConfig:
    """LoRA on the LLM in stage 2 (peft). The default adapts every Llama projection and the
    output head: the head's adapter lets the (otherwise frozen) LM sharpen its token
    distribution onto step texts, which attention-only adapters learn far more slowly."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head"])


@dataclass
class BuiltinLLMConfig:
    """The tiny Llama used when no `llm.path` is given (CPU tests, tabletop-tiny). Its weights
    are initialised from `seed`, and its BPE tokenizer is trained on the step labels, so
    rebuilding from the same config, labels and training plans gives the same LLM.

    pretrain_steps > 0: before stage 1, train it as a plain causal LM on the training split's
    plans written as sentences (training/train/llm_pretrain.py). Vicuna arrives knowing language and how
    procedures go; a randomly initialised stand-in knows nothing, and LoRA on a random network
    cannot make up for that. Adopted before the evaluation protocol (docs/evaluation.md) existed,
    then measured on val (tabletop-tiny, T=3, 3 seeds; bench/results/quality-additions): 400
    steps beat none by +1.7 val SR (95 % CI [+0.4, +3.1]); without it the trainer's val choice of
    the re-ranking weight was 0 on every seed, so the LLM no longer re-ranks."""

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 128
    vocab_size: int = 384
    seed: int = 0
    pretrain_steps: int = 0
    pretrain_lr: float = 3.0e-3
    pretrain_batch_size: int = 64


@dataclass
class LLMConfig:
    """LLM branch (Eq. 9-10). path: a local directory holding any AutoModelForCausalLM and its
    tokenizer (Vicuna-7B in production); None builds the tiny built-in Llama."""

    path: str | None = None
    dtype: str = "float32"
    max_new_tokens: int = 64
    builtin: BuiltinLLMConfig = field(default_factory=BuiltinLLMConfig)
    lora: LoRAConfig = field(default_factory=LoRAConfig)


@dataclass
class HeadsConfig:
    """Step decoder, knowledge fusion and step refiner (Eq. 11-13): one cross-attention block each."""

    num_heads: int = 4
    ffn_mult: int = 2
    dropout: float = 0.1


@dataclass
class VariantConfig:
    """Ablation switches (the paper's Tables 4-6).

    use_mim: Q-Former + L_MIM; without it the LLM and step decoder get T learnable step
    tokens in place of x^q. use_llm: the LLM branch (captions, L_ASC, knowledge fusion).
    llm_trainable: LoRA in stage 2 (False = the frozen-LLM variant; L_ASC then trains only the
    projection into the LLM). planning: "fused" (SD + KF + SR, the paper), "step_only" (SD +
    SR, no knowledge fusion; the LLM, if any, still captions), "llm_only" (closed-set ids by
    retrieving the LLM's captions against the step labels; no SD/KF/SR).
    """

    use_mim: bool = True
    use_llm: bool = True
    llm_trainable: bool = True
    planning: str = "fused"


@dataclass
class LossConfig:
    """Loss weights (Eq. 8 and 15 weight everything 1) and the contrastive temperature."""

    vlc: float = 1.0
    vlm: float = 1.0
    asc: float = 1.0
    sd: float = 1.0
    state: float = 1.0  # the state head's masked binary cross-entropy (models with a state head)
    temperature: float = 0.07


OPEN_VOCAB_METHODS = ("captions", "steps", "zero_shot", "joint")
OPEN_VOCAB_MAPPINGS = ("assign", "soft")


@dataclass
class OpenVocabConfig:
    """How a plan's steps are named from a caller's candidate label list (planllm_ros.model.openvocab,
    where the methods and the label mapping are explained).

    method: captions (the LLM's captions matched to the labels, the paper's retrieval) | steps
    (the closed-set plan renamed through the label mapping) | zero_shot (step embeddings
    against label embeddings in the space L_VLC trains) | joint (Viterbi over the candidates,
    emissions weighted by `steps`, `zero_shot` and `captions`, the train transition matrix
    carried through the mapping weighted by `transition`). mapping: assign (one known step per
    candidate, the Hungarian assignment: right when the list renames known steps) | soft
    (similarity softmax, assuming nothing about the list). label_weight: the share of the
    known steps' label embeddings (the rest: their description embeddings) in the similarity
    that builds the mapping; first_sentence: within the descriptions' share, that of their first
    sentence alone (the step said plainly; the rest: the whole description with its state
    sentences). hubness_k: neighbours of the hubness correction (CSLS; 0: off), which the
    one-to-one assignment compares. no_match: the cosine similarity below which a known step and
    a candidate are never paired; a known step the assignment leaves without a partner (the
    list has fewer labels than steps, or none similar enough) gets no label and its plan
    positions come out unknown (None: the older mapping, where such steps spread their
    probability over every candidate by similarity and so always get some label).

    The defaults were chosen on the tabletop paraphrase-val split (val episodes, the second
    paraphrase set) with tabletop-tiny runs of 1200 and 2400 training samples: `steps` with the
    one-to-one mapping renamed plans right about 0.9 times as often as the closed set (19.6 vs
    21.7 SR at 2400), while captions (2.7) and zero_shot (0.0) were far below, and no joint
    weighting of captions, step embeddings or the transition prior beat `steps` (joint with
    steps and the prior alone makes the same plans, minus the LLM re-ranking `steps` keeps);
    the soft mapping reached 5.8. label_weight 0.5 lies inside the plateau (0.4 to 0.8) of the
    mapping's val ceiling, the share of samples whose true steps all map to their own
    paraphrase (84.8 %; label embeddings alone 55.2 %, descriptions alone 76.7 %).
    first_sentence and hubness_k were chosen on the val rows of `planllm bench openvocab --lists`
    (val paraphrases alone, with 200 COIN labels, with CrossTask's labels, with half the steps
    unlabelled) with the bundled model, by their mean SR (46.5 against 45.0 without the
    correction and 33.0 for the older mapping): the first sentences lift the mapping's val ceiling
    on the exact renaming from 84.8 to 92.9 %, and the correction names the plans of the half
    list right 43.5 % of the time (36.4 without it). no_match 0.3 is a floor, not a tuned value:
    the least similar true pair of val is at 0.42, while the best unrelated COIN or CrossTask
    label of a step is at 0.59 (median), so no floor tells a missing label from a distractor;
    only the assignment does, by giving each label to one step. An earlier variant, with the
    no-match threshold at 0.0 on the corrected score, was also chosen on val; its test rows were
    looked at once, fell below the older mapping on the exact renaming (24.3 against 33.6 SR), and
    it was dropped: the test paraphrases are harder than val's, and the threshold withheld their
    true pairs. The settings above were then chosen on the same val rows and reported on test once
    (bench/results/openvocab-lists.md).
    """

    method: str = "steps"
    mapping: str = "assign"
    label_weight: float = 0.5
    first_sentence: float = 1.0
    hubness_k: int = 7
    no_match: float | None = 0.3
    steps: float = 1.0
    zero_shot: float = 0.0
    captions: float = 0.0
    transition: float = 1.0

    def validate(self) -> None:
        if self.method not in OPEN_VOCAB_METHODS:
            raise ConfigError(f"decoding.open_vocab.method must be one of {OPEN_VOCAB_METHODS}, got {self.method!r}")
        if self.mapping not in OPEN_VOCAB_MAPPINGS:
            raise ConfigError(f"decoding.open_vocab.mapping must be one of {OPEN_VOCAB_MAPPINGS}, got {self.mapping!r}")
        if not 0.0 <= self.label_weight <= 1.0:
            raise ConfigError(f"decoding.open_vocab.label_weight must lie in [0, 1], got {self.label_weight}")
        if not 0.0 <= self.first_sentence <= 1.0 or self.hubness_k < 0 or \
                self.no_match is not None and not -1.0 <= self.no_match <= 1.0:
            raise ConfigError(f"decoding.open_vocab: first_sentence must lie in [0, 1], hubness_k be >= 0 and no_match "
                              f"in [-1, 1] or null, got {self.first_sentence}, {self.hubness_k} and {self.no_match}")
        weights = {"steps": self.steps, "zero_shot": self.zero_shot, "captions": self.captions,
                   "transition": self.transition}
        negative = {k: v for k, v in weights.items() if v < 0}
        if negative:
            raise ConfigError(f"decoding.open_vocab weights must be >= 0, got {negative}")
        if self.method == "joint" and self.steps + self.zero_shot + self.captions == 0:
            raise ConfigError("decoding.open_vocab.method=joint needs a positive steps, zero_shot or captions weight")


CLOSED_SET_METHODS = ("viterbi", "argmax", "grounded")


@dataclass
class StateHeadConfig:
    """The state head (planllm_ros.model.heads.StateHead): from the backbone tokens of any image,
    which of the state propositions hold. The propositions and the step-effect model come from
    the training descriptions' before/after sentences (planllm_ros.model.states); the head is
    trained with the labels training.datasets.state_labels derives from them, and the
    state-grounded decoder reads its start and goal predictions."""

    enabled: bool = False
    hidden_dim: int = 128


@dataclass
class GroundedConfig:
    """The state-grounded decoder (planllm_ros.model.decoding.grounded_plans): a beam search
    over step sequences, each simulated through the step-effect model from the state head's
    reading of the start image. A candidate's score adds, each weighted:
    steps: the step decoder's log-probability of each step at its position;
    pre: the log-belief that each step's preconditions hold when it happens;
    fresh: the log-belief that each step's effects did not hold yet (a step changes something);
    goal: how well the simulated end state matches the state head's reading of the goal image
    (log-likelihood over every proposition);
    prior: the train transition matrix (log), added only where some candidate within `margin`
    of the best uses transitions seen in training alone (the backoff: a new task's new order is
    not ruled out by the training tasks' orders); the LLM re-ranking is gated the same way.
    clip: beliefs are kept in [clip, 1 - clip], so one wrong reading costs a bounded amount."""

    width: int = 64
    steps: float = 1.0
    pre: float = 1.0
    fresh: float = 1.0
    goal: float = 1.0
    prior: float = 1.0
    margin: float = 2.0
    clip: float = 0.02

    def validate(self) -> None:
        weights = {k: getattr(self, k) for k in ("steps", "pre", "fresh", "goal", "prior", "margin")}
        negative = {k: v for k, v in weights.items() if v < 0}
        if negative or self.width < 1 or not 0.0 < self.clip < 0.5:
            raise ConfigError(f"decoding.grounded: weights must be >= 0, width >= 1 and clip in (0, 0.5); got "
                              f"{negative or ''} width={self.width} clip={self.clip}")


@dataclass
class HorizonConfig:
    """How many steps a state-grounded model plans when nobody says (planllm_ros.model.horizon).

    One beam search through the step-effect model, as deep as `max_horizon`, scores the best
    plan of every length h by the grounded score (GroundedConfig, with the step decoder's
    position-free step probabilities); p(h) = softmax_h(score_h / temperature + offsets[h-1]).
    `offsets` and `temperature` are fitted on val windows of every length (`planllm states`),
    so that the longer plans' extra terms and the goal term's pull are weighed as the data say;
    the defaults (no offsets, temperature 1) are an uncalibrated start."""

    max_horizon: int = 6
    offsets: list[float] = field(default_factory=list)  # one per h = 1..max_horizon; empty: zeros
    temperature: float = 1.0

    def validate(self) -> None:
        if self.max_horizon < 1 or self.temperature <= 0 or self.offsets and len(self.offsets) != self.max_horizon:
            raise ConfigError(f"decoding.horizon: max_horizon must be >= 1, temperature > 0 and offsets empty or one "
                              f"per horizon; got max_horizon={self.max_horizon} temperature={self.temperature} "
                              f"offsets={self.offsets}")


@dataclass
class DecodingConfig:
    """The decoding a model folder records: the defaults of every decoding policy made for the
    model (planllm_ros.model.decoding.DecodingPolicy), which callers may override. Closed-set
    decoding of the step decoder's probabilities is Viterbi with the train transition matrix,
    or argmax (CLOSED_SET_METHODS, the caller's choice).

    llm_weight > 0 (models with an LLM branch and a step decoder): the `candidates` best
    Viterbi plans are re-scored as Viterbi score + llm_weight * log p_LLM(plan sentence |
    prompt), the likelihood that L_ASC trains, and the best is returned. Not in the paper: it
    is one concrete way for "the output from the LLM branch [to] contribute to conventional
    decoding", next to knowledge fusion. The trainer picks the weight on the validation split
    (train.llm_weights); 0 is plain Viterbi.

    open_vocab: how the plan's steps are named when the caller gives its own label list.
    method: the closed-set decoding a policy gets when its caller names none; "grounded" (models
    with a state head and a step-effect model) searches plans through the states they pass
    (GroundedConfig); horizon: how such a model chooses its number of steps when the caller gives
    none (HorizonConfig).
    """

    llm_weight: float = 0.0
    candidates: int = 10
    method: str = "viterbi"
    open_vocab: OpenVocabConfig = field(default_factory=OpenVocabConfig)
    grounded: GroundedConfig = field(default_factory=GroundedConfig)
    horizon: HorizonConfig = field(default_factory=HorizonConfig)


@dataclass
class PlanLLMConfig:
    horizon: int = 3
    num_steps: int = 0  # 0: set from the step labels the model is built with
    hidden_dim: int = 128
    dropout: float = 0.1
    init_std: float = 0.02  # std of the normal init of every learned query, position and role embedding
    visual: VisualConfig = field(default_factory=VisualConfig)
    text: TextConfig = field(default_factory=TextConfig)
    qformer: QFormerConfig = field(default_factory=QFormerConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    heads: HeadsConfig = field(default_factory=HeadsConfig)
    variant: VariantConfig = field(default_factory=VariantConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    states: StateHeadConfig = field(default_factory=StateHeadConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PlanLLMConfig":
        config = build(cls, data, "config")
        config.validate()
        return config

    def validate(self) -> None:
        """Reject combinations that cannot be built, with the key that is wrong."""
        if self.horizon < 1:
            raise ConfigError(f"horizon must be >= 1, got {self.horizon}")
        if self.num_steps < 0:
            raise ConfigError(f"num_steps must be >= 0 (0: taken from the step labels), got {self.num_steps}")
        if self.hidden_dim < 1 or self.hidden_dim % self.heads.num_heads:
            raise ConfigError(
                f"hidden_dim ({self.hidden_dim}) must be positive and divisible by heads.num_heads "
                f"({self.heads.num_heads})"
            )
        if self.visual.feature_dim < 1 or self.visual.num_tokens < 1:
            raise ConfigError(f"visual.feature_dim and visual.num_tokens must be >= 1, got "
                              f"{self.visual.feature_dim} and {self.visual.num_tokens}")
        grid = round(self.visual.num_tokens ** 0.5)
        if self.visual.merge < 1 or (self.visual.merge > 1 and (self.visual.pool_tokens or grid * grid != self.visual.num_tokens
                                                                or grid % self.visual.merge)):
            raise ConfigError(f"visual.merge={self.visual.merge} needs a square map of visual.num_tokens "
                              f"({self.visual.num_tokens}) whose side it divides, and no pool_tokens")
        if self.variant.planning not in PLANNING_MODES:
            raise ConfigError(f"variant.planning must be one of {PLANNING_MODES}, got {self.variant.planning!r}")
        if self.variant.planning == "llm_only" and not self.variant.use_llm:
            raise ConfigError("variant.planning='llm_only' needs variant.use_llm=true")
        if self.decoding.llm_weight < 0 or self.decoding.candidates < 1:
            raise ConfigError(f"decoding.llm_weight must be >= 0 and decoding.candidates >= 1, got "
                              f"{self.decoding.llm_weight} and {self.decoding.candidates}")
        self.decoding.open_vocab.validate()
        self.decoding.grounded.validate()
        self.decoding.horizon.validate()
        if self.decoding.method not in CLOSED_SET_METHODS:
            raise ConfigError(f"decoding.method must be one of {CLOSED_SET_METHODS}, got {self.decoding.method!r}")
        if self.decoding.method == "grounded" and not self.states.enabled:
            raise ConfigError("decoding.method='grounded' needs a state head (states.enabled=true)")
        if self.llm.dtype not in ("float32", "float16", "bfloat16"):
            raise ConfigError(f"llm.dtype must be float32, float16 or bfloat16, got {self.llm.dtype!r}")

