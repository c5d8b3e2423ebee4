"""Markdown tables from results rows."""


def suite_table(rows: list[dict]) -> str:
    """Markdown table: best single member (by clean accuracy), then every aggregate."""
    members = [r for r in rows if r["kind"] == "member"]
    best = max(members, key=lambda r: r["clean_acc"])
    shown = [best | {"reward_model": f"best single ({best['reward_model']})"}] + [r for r in rows if r["kind"] != "member"]

    def f(x):
        return "–" if x is None else f"{x:.3f}"

    lines = ["| reward model | clean acc | flipped: agrees with wrong label ↓ | OOD acc | BoN gold at gold-optimal n | n* |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['reward_model']} | {f(r['clean_acc'])} | {f(r['flipped_memorised'])} | {f(r['ood_acc'])} | "
              f"{f(r['bon_peak_gold'])} | {r['bon_peak_n']} |" for r in shown]
    return "\n".join(lines) + "\n"
