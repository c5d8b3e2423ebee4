"""The lab world's policy pretraining (worlds/lab.py builds and caches it): a Llama-architecture causal LM of a
LabSpec's size, trained from a random init on the lab corpus with its own byte-level BPE tokenizer (or a
shared world's), AdamW with warm-up then cosine decay over random windows of spec.context tokens."""

import math
import time

import torch

from goodhart.progress import progress_bar
from goodhart.worlds.lab_corpus import hf_tokenizers, train_tokenizer


def policy_config(spec, tok):
    """The LlamaConfig of a LabSpec `spec` (tied input and output embeddings, 2 × context positions)."""
    from transformers import LlamaConfig

    heads = spec.hidden // spec.head_dim
    return LlamaConfig(vocab_size=spec.vocab, hidden_size=spec.hidden, num_hidden_layers=spec.layers,
                       num_attention_heads=heads, num_key_value_heads=heads, intermediate_size=spec.intermediate,
                       max_position_embeddings=2 * spec.context, tie_word_embeddings=True,
                       bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)


def token_stream(tok, texts: list[str]) -> torch.Tensor:
    """[BOS] text [EOS] for every text, concatenated: (total tokens,) int64."""
    ids = []
    for enc in tok(texts, add_special_tokens=False)["input_ids"]:
        ids += [tok.bos_token_id, *enc, tok.eos_token_id]
    return torch.tensor(ids)


@torch.no_grad()
def heldout_loss(model, stream: torch.Tensor, context: int, rows: int = 64) -> float:
    """Mean next-token cross-entropy (nats) on the first `rows` windows of `stream`."""
    n = min(rows, (len(stream) - 1) // context)
    x = stream[: n * context].view(n, context)
    was = model.training
    model.eval()
    loss = model(input_ids=x, labels=x).loss.item()
    model.train(was)
    return loss


def pretrain(spec, texts: list[str], heldout: list[str], tokenizers: tuple | None = None):
    """Train the tokenizer (unless `tokenizers`, (policy, RM) tokenizers, are given) and the policy LM on
    `texts`: AdamW, warm-up then cosine decay, random windows of spec.context tokens. Returns (model, policy
    tokenizer, RM tokenizer, facts)."""
    from transformers import LlamaForCausalLM

    start = time.perf_counter()
    tok, rm_tok = tokenizers or hf_tokenizers(train_tokenizer(texts, spec.vocab))
    stream, held = token_stream(tok, texts), token_stream(tok, heldout)
    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(policy_config(spec, tok))
    init_loss = heldout_loss(model, held, spec.context)
    steps = max(1, int(spec.epochs * len(stream) / (spec.batch * spec.context)))
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=0.1, betas=(0.9, 0.95))
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    rng = torch.Generator().manual_seed(spec.seed)
    model.train()
    with progress_bar(steps, f"lab world: pretrain the policy ({steps} steps)") as advance:
        for _ in range(steps):
            at = torch.randint(0, len(stream) - spec.context, (spec.batch,), generator=rng)
            x = torch.stack([stream[i: i + spec.context] for i in at.tolist()])
            model(input_ids=x, labels=x).loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            advance()
    model.eval()
    facts = {"pretrain_tokens": len(stream), "pretrain_steps": steps, "heldout_tokens": len(held),
             "heldout_loss_init": init_loss, "heldout_loss": heldout_loss(model, held, spec.context),
             "params": sum(p.numel() for p in model.parameters()),
             "non_embedding_params": sum(p.numel() for n, p in model.named_parameters() if "embed" not in n),
             "pretrain_s": time.perf_counter() - start}
    return model, tok, rm_tok, facts
