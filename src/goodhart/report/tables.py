"""Markdown tables from results rows."""


def selector_order(name: str) -> tuple:
    """Sort key of Best-of-n selectors: weaker proxies (proxy_<P>) first, the main proxy, gold last."""
    return name == "gold", name == "proxy", len(name), name


def _by_reward_model(rows: list[dict], keep, order: str) -> dict[str, list[dict]]:
    """The rows `keep` accepts, by reward model (weakest proxy first, gold last), each sorted by `order`."""
    kept = [r for r in rows if keep(r)]
    names = sorted({r["reward_model"] for r in kept}, key=selector_order)
    return {s: sorted((r for r in kept if r["reward_model"] == s), key=lambda r: r[order]) for s in names}


def _curves(rows: list[dict]) -> dict[str, list[dict]]:
    """Best-of-n rows by selector, each sorted by n: the proxies (weakest first), then gold."""
    return _by_reward_model(rows, lambda r: r.get("method") == "bon", "n")


def curve_sentence(name: str, curve: list[dict]) -> str:
    """What one proxy's Best-of-n curve did, by a stated rule: "still rising" when gold is highest at the
    largest n; "peaks … and falls" only when the paired 95% interval of the fall after the peak (SPEC §11)
    is above 0; otherwise the fall is reported as not distinguishable from noise."""
    top, last = curve[0], curve[-1]
    who = f"{name} ({top.get('rm_pairs', '?')} comparisons"
    who += f", validation accuracy {top['rm_val_acc']:.3f})" if top.get("rm_val_acc") is not None else ")"
    peak = max(curve, key=lambda r: r["gold"])
    rise = f"its proxy score goes from {top['proxy']:+.2f} to {last['proxy']:+.2f}"
    if peak["n"] == last["n"]:
        return f"{who}: gold is still rising at n = {last['n']} ({last['gold']:+.2f}); {rise}."
    head = f"{who}: gold peaks at n = {peak['n']} ({peak['gold']:+.2f}) and is {last['gold']:+.2f} at n = {last['n']}"
    return _fall_verdict(head, last, rise)


def _fall_verdict(head: str, last: dict, rise: str) -> str:
    """The end of a peaked curve's sentence: a fall only when its paired interval (in `last`) is above 0."""
    if last.get("fall_lo") is None:
        return f"{head}; no paired interval for the fall (needs ≥ 4 prompts and bon.bootstrap > 0); {rise}."
    fall = f"paired fall after the peak {last['fall']:+.2f} [95% CI {last['fall_lo']:+.2f}, {last['fall_hi']:+.2f}]"
    if last["fall_lo"] > 0:
        return f"{head}: overoptimization ({fall}) while {rise}."
    return f"{head}, but the {fall} includes 0: not distinguishable from a plateau; {rise}."


def rl_curves(rows: list[dict]) -> dict[str, list[dict]]:
    """`goodhart run`'s RL-leg rows (study "rl") by proxy, weakest first, each sorted by step."""
    return _by_reward_model(rows, lambda r: r.get("study") == "rl", "step")


def rl_sentence(name: str, curve: list[dict]) -> str:
    """What RL against one proxy did, by the rule of curve_sentence: "still rising" when gold is highest at
    the last evaluation; a fall only when the paired 95% interval of gold at the peak (chosen on half the
    evaluation prompts) minus gold at the last evaluation (on the other half) is above 0."""
    top, last = curve[0], curve[-1]
    who = f"RLOO against {name} ({top.get('rm_pairs', '?')} comparisons)"
    peak = max(curve, key=lambda r: r["gold"])
    rise = f"its proxy score goes from {top['proxy']:+.2f} to {last['proxy']:+.2f}"
    at = f"step {last['step']} (d = {last['d']:.2f})"
    if peak["step"] == last["step"]:
        return f"{who}: gold is still rising at {at} ({last['gold']:+.2f}); {rise}."
    head = (f"{who}: gold peaks at step {peak['step']} (d = {peak['d']:.2f}, {peak['gold']:+.2f}) and is "
            f"{last['gold']:+.2f} at {at}")
    return _fall_verdict(head, last, rise)


def curve_lines(rows: list[dict]) -> list[str]:
    """One sentence per proxy curve of a run's results (curve_sentence), then one per RL leg (rl_sentence)."""
    return ([curve_sentence(name, c) for name, c in _curves(rows).items() if name != "gold"]
            + [rl_sentence(name, c) for name, c in rl_curves(rows).items()])


def curve_table(rows: list[dict]) -> str:
    """Plain-text table at a few n: gold/proxy (normalised) of each proxy's pick, headed by its data size,
    then the gold of gold's own pick (the ceiling)."""
    curves = _curves(rows)
    all_n = [r["n"] for r in next(iter(curves.values()))]
    marks = {1, 4, 16, 64, 256, 1024, 4096}
    shown = [n for n in all_n if n in marks] + ([all_n[-1]] if all_n[-1] not in marks else [])
    names = list(curves)
    head = [f"P={curves[s][0].get('rm_pairs', '?')}" if s != "gold" else "ceiling" for s in names]
    lines = [f"{'n':>5} {'d':>5}  " + " ".join(f"{h:>12}" for h in head) + "   (gold/proxy of each proxy's pick; "
             "ceiling: gold of gold's pick)"]
    for n in shown:
        at = [next(r for r in curves[s] if r["n"] == n) for s in names]
        cells = [f"{r['gold']:+.2f}/{r['proxy']:+.2f}" if s != "gold" else f"{r['gold']:+.2f}"
                 for s, r in zip(names, at, strict=True)]
        lines.append(f"{n:>5} {at[0]['d']:5.2f}  " + " ".join(f"{c:>12}" for c in cells))
    return "\n".join(lines)
