"""Write examples/quickstart.ipynb (the Python API end to end on the smoke world). Rerun after edits."""

from pathlib import Path

import nbformat

CELLS = [
    ("md", "# goodhart quickstart: the Python API on the smoke world\n\n"
           "Sample a policy, label comparisons with the gold reward, train two proxy RMs from one init, "
           "weight-average them (WARM), measure Best-of-n gold vs proxy against KL, fit Gao's curve, plot. "
           "Runs offline on a CPU in well under a minute."),
    ("code", "import os\nos.environ.setdefault('HF_HUB_OFFLINE', '1')\nimport copy\n\nimport numpy as np\nimport torch\n\n"
             "import goodhart\nfrom goodhart.sampling.engines import completion_grid\n"
             "from goodhart.reward.data import pairs_to_comparisons\n\n"
             "cfg = goodhart.load_run_config(world='smoke')\nworld = goodhart.load_world(cfg)\n"
             "train_prompts, eval_prompts = world.prompts[:32], world.prompts[32:36]\nlen(world.prompts), world.gold_name"),
    ("md", "## 1. Sample from the initial policy and label pairs with the gold reward"),
    ("code", "def sample(prompts, k, seed):\n    torch.manual_seed(seed)\n"
             "    comps = goodhart.sample_completions(world.policy, world.tokenizer, [world.render(p) for p in prompts], k,\n"
             "                                        max_new_tokens=12, add_special_tokens=world.add_special_tokens)\n"
             "    grid = completion_grid(comps)\n"
             "    gold = world.gold_scores([p for p in prompts for _ in range(k)], list(grid.ravel())).reshape(grid.shape)\n"
             "    return grid, gold\n\n"
             "comps, gold = sample(train_prompts, 8, seed=0)\n"
             "pairs = goodhart.make_pairs(gold, np.random.default_rng(0), max_pairs=512)\n"
             "train = pairs_to_comparisons(train_prompts, comps, pairs)\nlen(train), train.chosen[0], '>', train.rejected[0]"),
    ("md", "## 2. Two proxy RMs from one shared init, then WARM"),
    ("code", "init, tok = world.make_proxy(0)\nmembers = []\nfor seed in (1, 2):\n    rm = copy.deepcopy(init)\n"
             "    stats = goodhart.train_reward_model(rm, tok, train, goodhart.RMTraining(lr=2e-3, epochs=3, batch_size=16, max_length=32), seed=seed)\n"
             "    members.append(rm)\n    print(f\"member {seed}: loss {stats['rm/loss_first']:.3f} → {stats['rm/loss_last']:.3f}\")\n"
             "warm = goodhart.weight_average(members)"),
    ("md", "## 3. Best-of-n gold vs proxy for every n ≤ N from one pool"),
    ("code", "pool, pool_gold = sample(eval_prompts, 64, seed=1)\nflat = [p for p in eval_prompts for _ in range(64)]\n"
             "proxy = goodhart.score_pairs(warm, tok, flat, list(pool.ravel()), max_length=32).reshape(pool.shape)\n"
             "z = lambda x: (x - goodhart.normalisation(x)[0]) / goodhart.normalisation(x)[1]\n"
             "gold_n, proxy_n = z(pool_gold), z(proxy)\nns = np.arange(1, 65)\n"
             "d = np.sqrt(goodhart.kl_bound(ns))\n"
             "gold_curve = goodhart.bon_estimate(proxy_n, gold_n, ns).mean(axis=0)\n"
             "proxy_curve = goodhart.bon_estimate(proxy_n, proxy_n, ns).mean(axis=0)\n"
             "f'n=64: gold {gold_curve[-1]:.2f}, proxy {proxy_curve[-1]:.2f}; best gold {gold_curve.max():.2f} at n={ns[gold_curve.argmax()]}'"),
    ("md", "## 4. Fit R(d) = d(α − βd) (SPEC §10) and plot"),
    ("code", "fit = goodhart.fit_bon(d, gold_curve)\n"
             "print(f'α = {fit.alpha:.3f} {fit.alpha_ci}, β = {fit.beta:.3f} {fit.beta_ci}, R² = {fit.r2:.3f}')\n"
             "print('peak d* =', fit.peak_d, 'gold', fit.peak_reward)\n"
             "rows = [{'method': 'bon', 'reward_model': 'proxy', 'n': int(n), 'd': float(x), 'gold': float(g), 'proxy': float(p)}\n"
             "        for n, x, g, p in zip(ns, d, gold_curve, proxy_curve)]\nfig = goodhart.plot_bon(rows)\n"
             "import io\nfrom IPython.display import Image\nbuf = io.BytesIO()\nfig.savefig(buf, format='png', dpi=90)\n"
             "Image(buf.getvalue())"),
]


def main() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
                for kind, src in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    out = Path(__file__).parents[1] / "examples" / "quickstart.ipynb"
    nbformat.write(nb, out)
    print(out)


if __name__ == "__main__":
    main()
