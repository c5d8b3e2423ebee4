"""Tables of `goodhart rm suite` pooled over its seeds, one block per label-noise level ρ (SPEC §11).

- every reward model: clean, flipped and OOD accuracy (mean over seeds, t interval over seeds when
  there are ≥ 2) and Best-of-n gold at its peak (seeds pooled with each seed's prompt-bootstrap band);
  two derived rows per seed: the *average member* and the *best single* member by validation accuracy
  (a selection on the validation pairs, so its clean accuracy is optimistic);
- paired tests on the same pairs: exact McNemar on discordant counts summed over seeds (strata), the
  accuracy difference, and each aggregate minus the average member (t interval over seeds);
- paired Best-of-n differences (common prompt resamples within a seed, pooled over seeds).
"""

from collections import defaultdict

import numpy as np
from scipy import stats

from goodhart.bon.prompt_stats import mcnemar_exact, pooled

ACC = ("clean_acc", "flipped_memorised", "ood_acc")
SETS = {"val": "clean validation", "flip": "flipped training (truth)", "ood": "OOD"}


def t_interval(values) -> tuple[float, float | None, float | None]:
    """(mean, lo, hi): 95% t interval over seeds; no bounds from one seed."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    if not v.size:
        return float("nan"), None, None
    if v.size < 2:
        return float(v.mean()), None, None
    half = stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def _with_derived(rows: list[dict]) -> list[dict]:
    """Suite rows plus, per (ρ, seed), an "average member" and a "best single" row."""
    out = list(rows)
    by_rep = defaultdict(list)
    for r in rows:
        if r["kind"] == "member":
            by_rep[(r["label_noise"], r["seed"])].append(r)
    for members in by_rep.values():
        best = max(members, key=lambda r: r["clean_acc"])
        out.append(best | {"reward_model": "best single", "kind": "best single", "picked": best["reward_model"]})
        avg = {k: float(np.mean([m[k] for m in members])) if members[0].get(k) is not None else None
               for k in (*ACC, "bon_peak_gold")}
        out.append(members[0] | avg | {"reward_model": "average member", "kind": "average member",
                                       "bon_peak_gold_lo": None, "bon_peak_gold_hi": None})
    return out


def _order(name: str) -> tuple:
    head = {"average member": 0, "best single": 1}
    return head.get(name, 3 if "indep" in name else 2), "_M" in name and int(name.rsplit("_M", 1)[1]), name


def pooled_suite(rows: list[dict]) -> dict[float, list[dict]]:
    """{ρ: one record per reward model (members themselves left out), pooled over seeds}."""
    groups = defaultdict(list)
    for r in _with_derived([r for r in rows if r.get("study") == "rm_suite"]):
        if r["kind"] not in ("member", "indep"):
            groups[(r["label_noise"], r["reward_model"])].append(r)
    out = defaultdict(list)
    for (rho, name), g in sorted(groups.items(), key=lambda kv: (kv[0][0], _order(kv[0][1]))):
        rec = {"reward_model": name, "seeds": len(g), **{k: t_interval([r[k] for r in g]) for k in ACC}}
        bands = [r for r in g if r.get("bon_peak_gold_lo") is not None]
        rec["bon"] = pooled([r["bon_peak_gold"] for r in bands], [r["bon_peak_gold_lo"] for r in bands],
                            [r["bon_peak_gold_hi"] for r in bands]) if len(bands) == len(g) else \
            t_interval([r["bon_peak_gold"] for r in g])
        rec["peak_n"] = [r["bon_peak_n"] for r in g]
        out[rho].append(rec)
    return dict(out)


def _ci(est, fmt: str = ".3f") -> str:
    if est is None or est[0] is None or np.isnan(est[0]):
        return "–"
    return f"{est[0]:{fmt}}" + ("" if est[1] is None else f" [{est[1]:{fmt}}, {est[2]:{fmt}}]")


def pooled_tests(rows: list[dict]) -> list[dict]:
    """McNemar tests with discordant counts summed over seeds; average-member rows: t interval over seeds."""
    groups = defaultdict(list)
    for r in rows:
        if r.get("study") == "rm_suite_test":
            groups[(r["label_noise"], r["set"], r["a"], r["b"])].append(r)
    out = []
    order = {k: i for i, k in enumerate(SETS)}
    for (rho, kind, a, b), g in sorted(groups.items(), key=lambda kv: (kv[0][0], order[kv[0][1]], "indep" in kv[0][2],
                                                                        kv[0][3] != "ens_mean" and kv[0][3], kv[0][2])):
        rec = {"label_noise": rho, "set": kind, "a": a, "b": b, "seeds": len(g), "pairs": sum(r["pairs"] for r in g),
               "diff": t_interval([r["acc_a"] - r["acc_b"] for r in g])}
        if "only_a" in g[0]:
            only_a, only_b = sum(r["only_a"] for r in g), sum(r["only_b"] for r in g)
            rec |= {"only_a": only_a, "only_b": only_b, "p": mcnemar_exact(only_a, only_b)}
        out.append(rec)
    return out


def pooled_bon_diffs(rows: list[dict]) -> list[dict]:
    groups = defaultdict(list)
    for r in rows:
        if r.get("study") == "rm_suite_bon_diff":
            groups[(r["label_noise"], r["a"], r["b"], r["stat"])].append(r)
    return [{"label_noise": rho, "a": a, "b": b, "stat": stat, "seeds": len(g),
             "diff": pooled([r["diff"] for r in g], [r["diff_lo"] for r in g], [r["diff_hi"] for r in g])}
            for (rho, a, b, stat), g in sorted(groups.items())]


def suite_markdown(rows: list[dict]) -> str:
    """The suite's tables (see the module docstring), markdown."""
    out = []
    for rho, recs in pooled_suite(rows).items():
        seeds = max(r["seeds"] for r in recs)
        out += [f"### Label noise ρ = {rho:g} ({seeds} seed{'s' if seeds > 1 else ''})", "",
                "| reward model | clean acc | flipped: agrees with wrong label ↓ | OOD acc | BoN gold at its peak | "
                "peak n (seeds) |", "| --- | --- | --- | --- | --- | --- |"]
        out += [f"| {r['reward_model']} | {_ci(r['clean_acc'])} | {_ci(r['flipped_memorised'])} | {_ci(r['ood_acc'])} "
                f"| {_ci(r['bon'])} | {', '.join(map(str, r['peak_n']))} |" for r in recs]
        out.append("")
    tests = pooled_tests(rows)
    if tests:
        out += ["### Paired tests on the same pairs (McNemar: discordant counts summed over seeds)", "",
                "| ρ | pairs | A | B | A right only | B right only | acc A − acc B | McNemar p |",
                "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        out += [f"| {t['label_noise']:g} | {SETS[t['set']]} ({t['pairs']}) | {t['a']} | {t['b']} | "
                f"{t.get('only_a', '–')} | {t.get('only_b', '–')} | {_ci(t['diff'], '+.3f')} | "
                f"{format(t['p'], '.3g') if 'p' in t else '–'} |" for t in tests]
        out.append("")
    diffs = pooled_bon_diffs(rows)
    if diffs:
        out += ["### Best-of-n, paired on the same prompts (gold of A's picks − B's)", "",
                "| ρ | A − B | at | difference [95%] |", "| --- | --- | --- | --- |"]
        out += [f"| {d['label_noise']:g} | {d['a']} − {d['b']} | {'each one’s peak' if d['stat'] == 'max' else 'largest n'}"
                f" | {_ci(d['diff'], '+.3f')} |" for d in diffs]
        out.append("")
    return "\n".join(out)
