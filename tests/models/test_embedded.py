"""The embedded SmolLM2 is a real trained model; its random twin is not."""

import pytest

from modscope import corpus, load_model


@pytest.mark.slow
def test_embedded_model_predicts_news_and_its_twin_does_not():
    news = next(d for d in corpus.load("bundled").docs if d.category == "news")
    trained, twin = load_model("smollm2-135m"), load_model("random:smollm2-135m")
    assert (trained.n_layers, trained.d_model, trained.n_heads, trained.d_mlp) == (30, 576, 9, 1536)
    assert trained.tied_embeddings
    assert trained.loss(news.text) < 4.0
    assert twin.loss(news.text) > 9.0


@pytest.mark.slow
def test_every_bundled_document_reaches_position_511():
    tokenizer = load_model("smollm2-135m").tokenizer
    for doc in corpus.load("bundled").docs:
        assert len(tokenizer(doc.text[:8000])["input_ids"]) >= 512, doc.id
