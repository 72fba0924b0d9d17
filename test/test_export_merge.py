"""LoRA merge: peft merge_and_unload folds trained adapters into a tiny Llama; the merged
model (saved with its tokenizer, reloaded without peft) generates exactly what the adapted
model generates."""
from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from planllm_ros.export.merge import has_lora, merge_lora, save_llm
from planllm_ros.model.tokenizer import train_bpe_tokenizer


@pytest.fixture
def adapted_llm():
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64)
    llm = get_peft_model(LlamaForCausalLM(config), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():  # as if trained: LoRA B starts at zero, which would make the merge trivial
        for name, param in llm.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    return llm.eval()


def test_merge_matches_adapted_model_and_reloads_without_peft(adapted_llm, tmp_path):
    ids = torch.tensor([[1, 5, 9, 42, 7]])
    with torch.no_grad():
        adapted = adapted_llm(input_ids=ids).logits
        base = adapted_llm.get_base_model()
        with adapted_llm.disable_adapter():
            without = base(input_ids=ids).logits
    assert (adapted - without).abs().max() > 1e-3  # the adapters matter
    merged = merge_lora(adapted_llm)
    assert not has_lora(merged)
    tokenizer = train_bpe_tokenizer(["pick up the cup", "place the cup on the plate"], vocab_size=300)
    save_llm(merged, tokenizer, tmp_path / "llm")
    assert (tmp_path / "llm" / "model.safetensors").is_file()
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "llm").eval()
    assert AutoTokenizer.from_pretrained(tmp_path / "llm").decode([5]) == tokenizer.decode([5])
    with torch.no_grad():
        assert torch.allclose(reloaded(input_ids=ids).logits, adapted, atol=1e-5)
        generated = reloaded.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=0)
        expected = merged.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=0)
    assert torch.equal(generated, expected)


def test_plain_model_is_returned_unchanged():
    llm = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                       num_attention_heads=2, num_key_value_heads=2))
    assert merge_lora(llm) is llm


def test_merged_stage2_model_reloads_without_fresh_adapters(tmp_path):
    """Regression: a stage-2 model whose LoRA was merged used to get new, untrained LoRA
    adapters applied again by from_pretrained (the exporter papered over it by resetting
    the stage); loading must leave the merged LLM free of adapters."""
    from planllm_ros.model.planllm import PlanLLM
    from runtime_helpers import build_tiny_model

    model = build_tiny_model(stage=2)
    model.llm.model = merge_lora(model.llm.model)
    model.llm.lora_applied = False
    model.save_pretrained(tmp_path / "merged")
    reloaded = PlanLLM.from_pretrained(tmp_path / "merged")
    assert not reloaded.llm.lora_applied and not has_lora(reloaded.llm.model)
    start, goal = torch.randn(2, 1280), torch.randn(2, 1280)
    with torch.no_grad():
        assert torch.allclose(reloaded.predict(start, goal, captions=False).probs,
                              model.predict(start, goal, captions=False).probs, atol=1e-5)
