"""PlanLLM end to end on tiny configs (B=4, T=3): shapes, losses and their gradients per stage,
optimisation, save/load, a Llama + tokenizer from a local directory, BLIP-2 Q-Former init,
and the leak test (nothing from the ground truth reaches a prediction)."""
import json
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from transformers import Blip2QFormerConfig, Blip2QFormerModel

from planllm_ros.model.config import ConfigError, PlanLLMConfig
from planllm_ros.model.decoding import DecodingPolicy, viterbi
from planllm_ros.model.llm import build_builtin_llm, format_plan, parse_plan
from planllm_ros.model.pipeline import decode_steps
from planllm_ros.model.planllm import PlanLLM
from training.datasets.base import Sample, collate
from training.train.llm_pretrain import pretrain_builtin_llm
from training.train.stages import set_stage

LABELS = ["slice the tomato", "add salt", "pour water", "stir the soup", "open the lid", "close the lid"]
FEATURE_DIM, TEXT_DIM, B, T = 16, 8, 4, 3


def tiny_config(**overrides) -> PlanLLMConfig:
    data = {"horizon": T, "hidden_dim": 32, "visual": {"feature_dim": FEATURE_DIM, "backbone": None},
            "text": {"dim": TEXT_DIM}, "heads": {"num_heads": 2},
            "qformer": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64},
            "llm": {"max_new_tokens": 12, "lora": {"r": 2, "alpha": 4}}}
    for key, value in overrides.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return PlanLLMConfig.from_dict(data)


def make_model(seed: int = 0, **overrides) -> PlanLLM:
    torch.manual_seed(seed)
    return PlanLLM(tiny_config(**overrides), torch.randn(len(LABELS), TEXT_DIM), LABELS)


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(1)
    steps = torch.tensor([[0, 1, 2], [3, 4, 5], [0, 1, 2], [2, 3, 1]])
    return torch.randn(B, FEATURE_DIM, generator=generator), torch.randn(B, FEATURE_DIM, generator=generator), steps


def grads(module: torch.nn.Module) -> dict[str, bool]:
    return {n: p.grad is not None and bool(p.grad.abs().sum() > 0) for n, p in module.named_parameters()}


def test_stage1_only_mim_and_no_gradient_into_the_llm(batch):
    model = make_model()
    set_stage(model, 1)
    out = model(*batch)
    assert out.logits.shape == (B, T, len(LABELS))
    assert set(out.losses) == {"vlc", "vlm", "mim", "total"}
    assert all(torch.isfinite(v) for v in out.losses.values())
    out.losses["total"].backward()
    assert not any(grads(model.llm.model).values()) and all(p.grad is None for p in model.llm.parameters())
    assert all(grads(model.qformer).get(n) for n in ("queries", "out.weight", "match_head.weight", "text_in.weight"))
    assert all(grads(model.visual).values()) and all(grads(model.interaction).values())
    assert not any(grads(model.step_refiner).values())  # L_SD is a stage-2 loss
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)  # nothing unused (DDP)


def test_stage2_all_losses_lora_gets_gradients_base_llm_does_not(batch):
    model = make_model()
    set_stage(model, 2)
    out = model(*batch)
    assert set(out.losses) == {"vlc", "vlm", "mim", "asc", "sd", "total"}
    expected = out.losses["mim"] + out.losses["asc"] + out.losses["sd"]  # Eq. 15 with unit weights
    assert torch.allclose(out.losses["total"], expected)
    out.losses["total"].backward()
    llm = dict(model.llm.model.named_parameters())
    lora = [n for n in llm if "lora_" in n]
    assert lora and all(llm[n].requires_grad and llm[n].grad is not None for n in lora)
    assert any(llm[n].grad.abs().sum() > 0 for n in lora if "lora_B" in n or "lora_A" in n)
    assert all(p.grad is None and not p.requires_grad for n, p in llm.items() if "lora_" not in n)
    for part in (model.llm.projection, model.llm.hidden_out, model.step_decoder, model.knowledge_fusion,
                 model.step_refiner, model.qformer):
        assert any(grads(part).values()), part
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)  # nothing unused (DDP)


def test_a_few_steps_reduce_the_loss_on_a_fixed_batch(batch):
    model = make_model(dropout=0.0, heads={"dropout": 0.0}, qformer={"dropout": 0.0})
    set_stage(model, 2)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    history = []
    for _ in range(20):
        loss = model(*batch).losses["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    assert np.mean(history[-3:]) < 0.8 * np.mean(history[:3]), history


def test_save_load_round_trip_gives_identical_predictions(batch, tmp_path):
    model = make_model()
    set_stage(model, 2)
    with torch.no_grad():  # move LoRA away from its zero init so the adapters matter
        for name, param in model.llm.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    start, goal, _ = batch
    before = model.predict(start, goal)
    model.save_pretrained(tmp_path / "m")
    assert not list((tmp_path / "m").rglob("*.bin")) and not list((tmp_path / "m").rglob("*.pt"))
    loaded = PlanLLM.from_pretrained(tmp_path / "m")
    after = loaded.predict(start, goal)
    assert torch.equal(before.step_ids, after.step_ids) and torch.allclose(before.probs, after.probs, atol=1e-6)
    assert before.captions == after.captions and len(after.captions[0]) == T
    assert loaded.stage == 2 and loaded.llm.lora_applied


def test_trainable_state_dict_excludes_frozen_llm_and_restores_a_rebuilt_model(batch):
    model = make_model(seed=3)
    set_stage(model, 2)
    state = model.trainable_state_dict()
    assert any("lora_" in k for k in state) and not any(k.startswith("llm.model.") and "lora_" not in k for k in state)
    rebuilt = make_model(seed=7)  # other init: everything must come from the state dict
    rebuilt.load_trainable_state_dict(state)  # switches LoRA on by itself
    assert rebuilt.llm.tokenizer.get_vocab() == model.llm.tokenizer.get_vocab()  # built-in LLM is deterministic
    start, goal, _ = batch
    assert torch.equal(model.predict(start, goal, captions=False).step_ids, rebuilt.predict(start, goal, captions=False).step_ids)
    assert torch.allclose(model.predict(start, goal).probs, rebuilt.predict(start, goal).probs, atol=1e-6)
    with pytest.raises(KeyError, match="missing"):
        make_model().load_trainable_state_dict({k: v for k, v in state.items() if "visual" not in k})


class RemembersTheLabels(PlanLLM):
    """A planted leak: the model keeps the steps of its last labelled pass and adds them to its
    step logits from then on, as a model with a label cache or teacher forcing left on would."""

    seen: torch.Tensor | None = None

    def forward(self, start, goal, steps, state_labels=None):
        self.seen = steps
        return super().forward(start, goal, steps, state_labels)

    def decode_steps(self, visual_tokens, step_tokens, hidden):
        logits = super().decode_steps(visual_tokens, step_tokens, hidden)
        if self.seen is None:
            return logits
        return logits + 50.0 * torch.nn.functional.one_hot(self.seen.long(), logits.shape[-1])


def ground_truth_reaches(model: PlanLLM, batch) -> list[str]:
    """What moves when the labels change: the samples' steps and task are shuffled, every
    labelled pass (the training forward, as validation runs it before planning) gets them, and
    then the model plans from start and goal. Names the outputs that differ: training logits,
    plan ids, probabilities, captions."""
    set_stage(model, 2)
    model.eval()
    start, goal, steps = batch
    rng = np.random.default_rng(0)
    samples = [Sample(start[i].numpy(), goal[i].numpy(), steps[i].numpy(), task=0, video=f"v{i}") for i in range(B)]
    shuffled = [Sample(s.start, s.goal, rng.permutation(len(LABELS))[:T], task=1, video=s.video) for s in samples]
    transition = torch.full((len(LABELS), len(LABELS)), 1.0 / len(LABELS))
    outputs = []
    for labelled in (collate(samples), collate(shuffled)):
        with torch.no_grad():  # the training forward uses steps for its losses only
            logits = model(labelled["start"], labelled["goal"], labelled["steps"]).logits
        outputs.append((logits, model.predict(labelled["start"], labelled["goal"], transition)))
    (logits, first), (other_logits, second) = outputs
    assert torch.allclose(logits.softmax(-1), first.probs, atol=1e-5)  # predict plans from the same logits
    changed = [] if torch.allclose(logits, other_logits, atol=1e-5) else ["training logits"]
    changed += [] if torch.equal(first.step_ids, second.step_ids) else ["step ids"]
    changed += [] if torch.equal(first.probs, second.probs) else ["probabilities"]
    return changed + ([] if first.captions == second.captions else ["captions"])


@pytest.mark.parametrize("llm_weight", [0.0, 1.0])  # 1.0: Viterbi candidates re-ranked by the LLM
def test_leak_nothing_from_the_ground_truth_reaches_predictions(batch, llm_weight):
    """Shuffle the labels every labelled pass sees (the steps of every sample and its task):
    neither the training forward's logits nor the plans made after it move."""
    assert ground_truth_reaches(make_model(decoding={"llm_weight": llm_weight}), batch) == []


def test_leak_check_catches_a_model_that_keeps_the_labels(batch):
    """Negative control: a model that carries the labels of its last labelled pass into its step
    logits is caught, in its training logits and in the plans it makes afterwards."""
    torch.manual_seed(0)
    leaky = RemembersTheLabels(tiny_config(), torch.randn(len(LABELS), TEXT_DIM), LABELS)
    changed = ground_truth_reaches(leaky, batch)
    assert {"training logits", "step ids", "probabilities"} <= set(changed)


def test_viterbi_decoding_uses_the_transition_matrix(batch):
    model = make_model()
    start, goal, _ = batch
    transition = np.full((len(LABELS), len(LABELS)), 1e-3)
    transition[:, 4] = 1.0  # everything goes to step 4
    prediction = model.predict(start, goal, transition=transition, decode="viterbi", captions=False)
    assert torch.equal(prediction.step_ids, torch.as_tensor(viterbi(prediction.probs, transition)))
    assert (prediction.step_ids[:, 1:] == 4).all()
    assert prediction.captions == [[] for _ in range(B)]


@pytest.mark.parametrize("overrides, terms", [
    ({"variant": {"use_mim": False}}, {"asc", "sd", "total"}),
    ({"variant": {"use_llm": False}}, {"vlc", "vlm", "mim", "sd", "total"}),
    ({"variant": {"llm_trainable": False}}, {"vlc", "vlm", "mim", "asc", "sd", "total"}),
    ({"variant": {"planning": "step_only"}}, {"vlc", "vlm", "mim", "asc", "sd", "total"}),
])
def test_variants_build_train_and_predict(batch, overrides, terms):
    model = make_model(**overrides)
    set_stage(model, 2)
    out = model(*batch)
    assert set(out.losses) == terms and torch.isfinite(out.losses["total"])
    out.losses["total"].backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    variant = model.config.variant
    if variant.use_llm:
        assert model.llm.lora_applied == variant.llm_trainable
        assert any(grads(model.llm.projection).values())  # L_ASC trains the projection even with a frozen LLM
    assert hasattr(model, "knowledge_fusion") == (variant.use_llm and variant.planning == "fused")
    assert model.predict(batch[0], batch[1]).step_ids.shape == (B, T)


def test_llm_only_generates_captions_at_inference_but_not_for_losses(batch, monkeypatch):
    model = make_model(variant={"planning": "llm_only"})
    set_stage(model, 2)
    calls = []
    generate = model.llm.generate_captions
    monkeypatch.setattr(model.llm, "generate_captions", lambda *a: calls.append(1) or generate(*a))
    out = model(*batch)  # training step: only L_MIM + L_ASC, so no greedy generation per batch
    assert calls == [] and out.logits is None
    assert set(out.losses) == {"vlc", "vlm", "mim", "asc", "total"}
    out.losses["total"].backward()
    prediction = model.predict(batch[0], batch[1])  # inference: captions -> retrieval -> ids
    assert calls == [1] and prediction.step_ids.shape == (B, T) and len(prediction.captions) == B


def test_llm_plan_likelihood_is_what_asc_trains_and_reranking_uses_it(batch):
    model = make_model(seed=3)
    set_stage(model, 2)
    model.eval()
    start, goal, steps = batch
    _, state_tokens, step_tokens = model.encode_states(start, goal)
    truth = [[LABELS[i] for i in row] for row in steps.tolist()]
    with torch.no_grad():
        likelihood = model.llm.plan_log_likelihood(state_tokens, step_tokens, truth)  # K = 1
        _, asc = model.llm(state_tokens, step_tokens, [format_plan(plan) for plan in truth])
    tokens = sum(len(model.llm._target_row(format_plan(plan))) for plan in truth)
    assert likelihood.shape == (B, 1)
    assert float(-likelihood.sum() / tokens) == pytest.approx(float(asc), rel=1e-5)  # ASC = mean token NLL

    transition = torch.full((len(LABELS), len(LABELS)), 1.0 / len(LABELS))
    probs = model.predict(start, goal, captions=False).probs
    viterbi_ids = viterbi(probs, transition)
    policy = DecodingPolicy.for_model(model, transition)
    ids, none = decode_steps(model, probs, state_tokens, step_tokens, policy)
    assert (ids == viterbi_ids).all() and none is None  # llm_weight 0: plain Viterbi, no LLM pass
    _, candidates = decode_steps(model, probs, state_tokens, step_tokens, policy, keep_candidates=True)
    assert candidates.paths.shape == (B, 10, T) and (candidates.paths[:, 0] == viterbi_ids).all()
    assert (candidates.choose(0.0) == viterbi_ids).all()
    model.config.decoding.llm_weight = 1e6  # the LLM alone picks among Viterbi's candidates
    reranked, _ = decode_steps(model, probs, state_tokens, step_tokens, DecodingPolicy.for_model(model, transition))
    assert (reranked == candidates.paths[np.arange(B), candidates.llm_scores.argmax(1)]).all()
    assert (model.predict(start, goal, transition).step_ids.numpy() == reranked).all()
    argmax_ids, _ = decode_steps(model, probs, state_tokens, step_tokens,
                                 DecodingPolicy.for_model(model, transition, method="argmax"))
    assert (argmax_ids == probs.argmax(-1).numpy()).all()


def test_builtin_llm_pretrains_on_the_training_plans_deterministically():
    plans = [[0, 1, 2], [3, 4, 5], [0, 1, 2], [2, 3, 1]]
    pretrained = {"builtin": {"pretrain_steps": 30, "pretrain_batch_size": 8}}
    with pytest.raises(ValueError, match="needs training plans"):
        pretrain_builtin_llm(make_model(llm=pretrained), [])
    first, second = make_model(llm=pretrained, seed=1), make_model(llm=pretrained, seed=2)
    assert pretrain_builtin_llm(first, plans) is not None and pretrain_builtin_llm(second, plans) is not None
    assert pretrain_builtin_llm(make_model(), plans) is None  # pretrain_steps 0: nothing to do
    model, tokenizer, again = first.llm.model, first.llm.tokenizer, second.llm.model
    random_init, _ = build_builtin_llm(tiny_config().llm, LABELS, T)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    assert not any(p.requires_grad for p in model.parameters())  # frozen again: only LoRA trains later
    text = tokenizer(" " + format_plan([LABELS[i] for i in plans[0]]), return_tensors="pt")["input_ids"]

    def loss(llm) -> float:
        with torch.no_grad():
            return float(llm(input_ids=text, labels=text).loss)

    assert loss(model) < 0.5 * loss(random_init)  # it has learnt how the training plans are written
    assert not model.training


def test_caption_budget_warns_when_generation_would_cut_the_longest_plan():
    llm = make_model(llm={"max_new_tokens": 5}).llm
    plans = [[LABELS[i] for i in plan] for plan in ([0, 1, 2], [3, 4, 5])]
    with pytest.warns(UserWarning, match="max_new_tokens=5 cuts captions"):
        longest = llm.check_caption_budget(plans)
    assert longest == max(len(llm._target_row(format_plan(plan))) for plan in plans) > 5
    roomy = make_model(llm={"max_new_tokens": longest}).llm
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert roomy.check_caption_budget(plans) == longest


def test_bad_inputs_get_clear_errors(batch):
    model = make_model()
    start, goal, steps = batch
    with pytest.raises(ValueError, match="step ids"):
        model(start, goal, steps + len(LABELS))
    with pytest.raises(ValueError, match=r"steps must be \(B=4, T=3\)"):
        model(start, goal, steps[:, :2])
    with pytest.raises(ValueError, match="features of shape"):
        model(start[:, :5], goal[:, :5], steps)
    with pytest.raises(ValueError, match="backbone is None"):
        model(torch.zeros(2, 8, 8, 3, dtype=torch.uint8), torch.zeros(2, 8, 8, 3, dtype=torch.uint8), steps[:2])
    with pytest.raises(ValueError, match="6 step labels"):
        PlanLLM(tiny_config(num_steps=5), torch.randn(6, TEXT_DIM), LABELS)


def test_visual_tokens_are_start_goal_and_change_per_location_with_position_and_role():
    tokens, channels = 5, FEATURE_DIM
    with_change = make_model(visual={"num_tokens": tokens}).eval()
    without = make_model(visual={"num_tokens": tokens, "state_change": False}).eval()
    start, goal = torch.randn(2, tokens, channels), torch.randn(2, tokens, channels)
    visual = with_change.visual
    out = visual(start, goal)
    assert out.shape == (2, 3 * tokens, 32)
    x0, xT, delta = out.split(tokens, dim=1)
    assert torch.allclose(x0, visual.projection(start) + visual.position + visual.role[0])
    assert torch.allclose(xT, visual.projection(goal) + visual.position + visual.role[1])
    assert torch.allclose(delta, visual.change(goal - start) + visual.position + visual.role[2])
    assert without.visual(start, goal).shape == (2, 2 * tokens, 32) and without.visual.change is None
    assert not any(".change." in k for k in without.state_dict())
    # the LLM reads one mean token per role; the interaction keeps the layout
    _, state_tokens, _ = with_change.encode_states(start, goal)
    assert state_tokens.shape == (2, 3, 32)
    assert all(p.requires_grad for p in visual.change.parameters())  # trained from stage 1 on
    with pytest.raises(ValueError, match="same shape"):
        visual(start, goal[:1])
    with pytest.raises(ValueError, match="5 tokens"):
        visual(start[:, :4], goal[:, :4])


def test_the_interaction_mixes_roles_within_a_location_only():
    model = make_model(visual={"num_tokens": 4}).eval()
    start, goal = torch.randn(1, 4, FEATURE_DIM), torch.randn(1, 4, FEATURE_DIM)
    base = model.interaction(model.visual(start, goal), 3)
    moved_goal = goal.clone()
    moved_goal[:, 2] = torch.randn(FEATURE_DIM)  # change the goal at location 2 only
    moved = model.interaction(model.visual(start, moved_goal), 3)
    changed = (moved - base).abs().amax(-1).view(3, 4) > 1e-5  # (role, location)
    assert changed[:, 2].all() and not changed[:, [0, 1, 3]].any()


def test_pooling_the_tokens_reproduces_the_one_vector_model():
    pooled = make_model(visual={"num_tokens": 1, "pool_tokens": True}).eval()
    start, goal = torch.randn(2, 6, FEATURE_DIM), torch.randn(2, 6, FEATURE_DIM)
    from_tokens = pooled.predict(start, goal, captions=False).probs
    from_vectors = pooled.predict(start.mean(1), goal.mean(1), captions=False).probs  # what a one-vector feature dataset gives
    assert torch.allclose(from_tokens, from_vectors, atol=1e-5)
    assert pooled.visual(start, goal).shape == (2, 3, 32)


def test_no_mim_variant_refuses_stage_one():
    with pytest.raises(ValueError, match="use_mim"):
        set_stage(make_model(variant={"use_mim": False}), 1)


def test_plan_sentence_format_and_robust_parse():
    assert format_plan(["slice the tomato", "add salt."]) == "1. slice the tomato. 2. add salt."
    assert parse_plan(format_plan(LABELS[:3]), 3) == LABELS[:3]
    assert parse_plan("1. add 1.5 cups of water. 2) stir", 3) == ["add 1.5 cups of water", "stir", ""]
    assert parse_plan("::::", 2) == ["::::", ""] and parse_plan("", 2) == ["", ""]


def test_llama_and_tokenizer_from_a_local_directory(batch, tmp_path):
    """The production code path (config.llm.path): any saved causal LM + tokenizer."""
    llm_config = tiny_config().llm
    llm, tokenizer = build_builtin_llm(llm_config, ["whisk the eggs", "heat the pan", "serve"], horizon=T)
    llm.save_pretrained(str(tmp_path / "llama"))
    tokenizer.save_pretrained(str(tmp_path / "llama"))
    model = make_model(llm={"path": str(tmp_path / "llama")})
    assert type(model.llm.base_model()).__name__ == "LlamaForCausalLM"
    assert torch.equal(model.llm.model.get_input_embeddings().weight, llm.get_input_embeddings().weight)
    set_stage(model, 2)
    model(*batch).losses["total"].backward()
    start, goal, _ = batch
    before = model.predict(start, goal)
    model.save_pretrained(tmp_path / "m")
    assert not (tmp_path / "m" / "llm").exists()  # a path LLM is referenced, not copied
    assert torch.equal(PlanLLM.from_pretrained(tmp_path / "m").predict(start, goal).step_ids, before.step_ids)
    with pytest.raises(FileNotFoundError, match="config.json"):
        make_model(llm={"path": str(tmp_path / "nothing")})


def test_qformer_initialised_from_a_local_blip2_checkpoint(tmp_path):
    qconfig = Blip2QFormerConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                 encoder_hidden_size=48, cross_attention_frequency=1)
    torch.manual_seed(5)
    reference = Blip2QFormerModel(qconfig)
    tensors = {f"qformer.{k}": v.contiguous() for k, v in reference.state_dict().items()}
    tensors["query_tokens"] = torch.randn(1, 8, 32)
    tensors["language_projection.weight"] = torch.randn(4, 32)
    (tmp_path / "blip2").mkdir()
    save_file(tensors, str(tmp_path / "blip2" / "model.safetensors"))
    (tmp_path / "blip2" / "config.json").write_text(json.dumps({"model_type": "blip-2", "qformer_config": qconfig.to_dict()}))
    model = make_model(qformer={"checkpoint": str(tmp_path / "blip2")})
    for key, value in reference.state_dict().items():
        assert torch.equal(model.qformer.qformer.state_dict()[key], value), key
    assert torch.equal(model.qformer.queries, tensors["query_tokens"][0, :T])
    assert model.qformer.image_in.out_features == 48
    with pytest.raises(FileNotFoundError, match="config.json"):
        make_model(qformer={"checkpoint": str(tmp_path)})


def test_uint8_images_go_through_the_frozen_backbone_which_is_never_saved():
    config = tiny_config(visual={"feature_dim": 96, "num_tokens": 196, "backbone": "mobilenet_v2", "layer": 13},
                         variant={"use_llm": False})
    torch.manual_seed(0)
    model = PlanLLM(config, torch.randn(len(LABELS), TEXT_DIM), LABELS)
    images = torch.randint(0, 256, (2, 48, 64, 3), dtype=torch.uint8)
    from_images = model.predict(images, images.flip(0), captions=False)
    features = model.visual.backbone(images)
    assert features.shape == (2, 196, 96)  # block 13's 14x14 map, one token per location
    assert torch.allclose(model.predict(features, features.flip(0), captions=False).probs, from_images.probs, atol=1e-5)
    assert not any(k.startswith("visual.backbone.") for k in model.trainable_state_dict())
    set_stage(model, 1)
    assert not any(p.requires_grad for p in model.visual.backbone.parameters())


def test_greedy_captions_continue_the_prompt_pass_exactly_as_generate_would(batch):
    """One pass over the prompt gives h (the training pass's h, with or without the ground truth
    appended) and the cache captions continue from; the tokens are transformers' greedy
    generate's, and beam search still goes through generate."""
    model = make_model(seed=4)
    set_stage(model, 2)
    model.eval()
    _, state_tokens, step_tokens = model.encode_states(batch[0], batch[1])
    llm = model.llm
    with torch.no_grad():
        prompt = llm.read_prompt(state_tokens, step_tokens)
        assert torch.allclose(prompt.hidden, llm(state_tokens, step_tokens)[0], atol=1e-5)
        targets = [format_plan(LABELS[:T]), format_plan(LABELS[T:])] * (B // 2)  # of two lengths: padded
        assert torch.allclose(prompt.hidden, llm(state_tokens, step_tokens, targets)[0], atol=1e-5)  # causal
        ours = llm._greedy(prompt)
        embeds = llm.prompt_embeddings(state_tokens, step_tokens)
        reference = llm.model.generate(inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long),
                                       max_new_tokens=llm.config.max_new_tokens, do_sample=False,
                                       pad_token_id=llm.tokenizer.pad_token_id, eos_token_id=llm.tokenizer.eos_token_id)
    assert torch.equal(ours, reference[:, :ours.shape[1]]) and (reference[:, ours.shape[1]:] == llm.tokenizer.pad_token_id).all()
    assert len(llm.generate_captions(state_tokens, step_tokens, num_beams=2)) == B


def test_merging_blocks_of_the_map_averages_projected_locations():
    model = make_model(visual={"num_tokens": 16, "merge": 2}).eval()
    start, goal = torch.randn(2, 16, FEATURE_DIM), torch.randn(2, 16, FEATURE_DIM)
    visual = model.visual
    tokens = visual(start, goal)
    assert tokens.shape == (2, 3 * 4, 32) and visual.tokens_per_role == 4
    full = (visual.projection(start) + visual.position).view(2, 4, 4, 32)  # the 4x4 map of projected start tokens
    top_left = full[:, :2, :2].mean((1, 2)) + visual.role[0]
    assert torch.allclose(tokens[:, 0], top_left, atol=1e-6)
    assert model.encode_states(start, goal)[0].shape == (2, 12, 32)
    with pytest.raises(ConfigError, match="merge"):
        tiny_config(visual={"num_tokens": 15, "merge": 2})


def test_plan_likelihood_continuing_the_read_prompt_equals_reading_it_again(batch):
    """Re-ranking continues the prompt's KV cache (left unchanged for captions) instead of
    re-reading the prompt for every candidate: the same log-likelihoods."""
    model = make_model(seed=5)
    set_stage(model, 2)
    model.eval()
    _, state_tokens, step_tokens = model.encode_states(batch[0], batch[1])
    plans = [[LABELS[i] for i in (a, b, c)] for a, b, c in ([0, 1, 2], [3, 4, 5])] * B  # K = 2 per sample
    with torch.no_grad():
        prompt = model.llm.read_prompt(state_tokens, step_tokens)
        length = prompt.cache.get_seq_length()
        again = model.llm.plan_log_likelihood(state_tokens, step_tokens, plans)
        cached = model.llm.plan_log_likelihood(state_tokens, step_tokens, plans, prompt)
        captions = model.llm.generate_captions(state_tokens, step_tokens, prompt)
    assert torch.allclose(cached, again, atol=1e-4) and cached.shape == (B, 2)
    assert prompt.cache.get_seq_length() == length  # neither user extended the prompt's own cache
    assert captions == model.llm.generate_captions(state_tokens, step_tokens)
