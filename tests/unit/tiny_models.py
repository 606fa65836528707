"""Tiny real models built in code (no downloads): random weights, real architectures and tokenizers.

``build_tiny_cross_encoder(path)`` writes a 2-layer BERT sequence classifier (one label) and a
WordPiece tokenizer to ``path``; ``sentence_transformers.CrossEncoder(str(path))`` loads it like
any hub reranker. Weights are fixed by ``seed``; ``initializer_range`` is larger than BERT's so
different pairs get visibly different scores.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

#: the default vocabulary: enough words to write distinguishable test queries and documents
WORDS = (
    "the a an of and or to in on at is are was be what where who which how why when does do "
    "cat cats dog dogs bird birds fish tree trees house houses sat mat red blue green big small "
    "river sea sky sun moon star rain snow cold warm fast slow eat eats run runs swim swims fly flies "
    "protein gene cell cells cancer vitamin drug dose risk trial study effect patients"
).split()


def build_tiny_cross_encoder(
    path: str | Path,
    *,
    seed: int = 0,
    words: Iterable[str] = WORDS,
    hidden_size: int = 32,
    num_layers: int = 2,
    max_positions: int = 64,
    initializer_range: float = 0.3,
) -> Path:
    """Write a tiny cross-encoder (``BertForSequenceClassification``, ``num_labels=1``) and its
    tokenizer to ``path``; return the path."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {s: i for i, s in enumerate(SPECIAL)}
    for w in words:
        vocab.setdefault(w.lower(), len(vocab))

    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer = BertTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        model_max_length=max_positions,
    )

    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=max_positions,
        num_labels=1,
        initializer_range=initializer_range,
    )
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = BertForSequenceClassification(config)
    finally:
        torch.random.set_rng_state(state)
    model.eval()
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_tiny_sentence_transformer(path: str | Path, words: Iterable[str]) -> Path:
    """The tiny BERT of :func:`build_tiny_cross_encoder` (random weights, fixed seed) + mean
    pooling, saved as a SentenceTransformer directory at ``path``."""
    from sentence_transformers import SentenceTransformer

    try:
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:  # sentence-transformers < 5.4
        from sentence_transformers.models import Pooling, Transformer

    path = Path(path)
    bert = build_tiny_cross_encoder(path.with_name(path.name + "-bert"), words=words, max_positions=128)
    transformer = Transformer(str(bert), max_seq_length=128)
    dim = getattr(transformer, "get_embedding_dimension", None) or transformer.get_word_embedding_dimension
    SentenceTransformer(modules=[transformer, Pooling(dim(), "mean")], device="cpu").save(str(path))
    return path
