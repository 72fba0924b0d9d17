"""Open-vocabulary retrieval, the description-embedding cache and LLM-only planning, with the
real offline MiniLM text encoder (loaded once for the module)."""
import pytest
import torch
from safetensors.torch import save_file

from planllm_ros.model.config import PlanLLMConfig
from planllm_ros.model.descriptions import embed_descriptions
from planllm_ros.model.openvocab import retrieve_labels
from planllm_ros.model.planllm import PlanLLM
from planllm_ros.model.text_encoder import TextEncoder
from training.train.stages import set_stage

LABELS = ["slice the tomato", "add salt", "pour water", "stir the soup"]


@pytest.fixture(scope="module")
def encoder():
    return TextEncoder()


def test_retrieve_labels_picks_the_closest_label_per_caption(encoder):
    candidates = ["pour water into the pot", "cut the tomato into slices", "sprinkle some salt"]
    captions = ["slice the tomato", "add salt", "pour water", "slice the tomato"]
    assert retrieve_labels(captions, candidates, encoder) == [1, 2, 0, 1]
    assert retrieve_labels([], candidates, encoder) == []
    with pytest.raises(ValueError, match="candidate"):
        retrieve_labels(captions, [], encoder)


def test_description_embeddings_are_cached_by_encoder_and_text(encoder, tmp_path):
    texts = ["Cut the tomato into slices.", "Pour water into the pot."]
    first = embed_descriptions(texts, encoder, cache_dir=tmp_path)
    assert first.shape == (2, encoder.dim) and torch.allclose(first.norm(dim=1), torch.ones(2), atol=1e-5)
    files = list(tmp_path.glob("*.safetensors"))
    assert len(files) == 1
    marker = torch.full_like(first, 7.0)  # overwrite the cache: a second call must read it back
    save_file({"embeddings": marker}, str(files[0]))
    assert torch.equal(embed_descriptions(texts, encoder, cache_dir=tmp_path), marker)
    embed_descriptions(texts[::-1], encoder, cache_dir=tmp_path)  # other texts: other key
    assert len(list(tmp_path.glob("*.safetensors"))) == 2
    assert torch.allclose(embed_descriptions(texts, encoder), first)


def test_llm_only_planning_retrieves_captions_against_the_labels(encoder):
    config = PlanLLMConfig.from_dict({
        "horizon": 2, "hidden_dim": 32, "visual": {"feature_dim": 8, "backbone": None}, "heads": {"num_heads": 2},
        "qformer": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64},
        "llm": {"max_new_tokens": 16}, "variant": {"planning": "llm_only"}})
    torch.manual_seed(0)
    model = PlanLLM(config, embed_descriptions(LABELS, encoder), LABELS)
    model.attach_text_encoder(encoder)
    set_stage(model, 2)
    start, goal, steps = torch.randn(3, 8), torch.randn(3, 8), torch.tensor([[0, 1], [2, 3], [1, 2]])
    out = model(start, goal, steps)
    assert set(out.losses) == {"vlc", "vlm", "mim", "asc", "total"}  # no step decoder, no L_SD
    out.losses["total"].backward()
    prediction = model.predict(start, goal, decode="argmax")
    flat = [c for row in prediction.captions for c in row]
    assert prediction.step_ids.flatten().tolist() == retrieve_labels(flat, LABELS, encoder)
