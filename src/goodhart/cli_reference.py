"""docs/cli.md from the CLI itself: every command's --help text, so the reference never drifts.

Regenerate with `python -m goodhart.cli_reference > docs/cli.md` (a test checks it is current).
"""



def _walk(cmd, path: list[str]):
    """(path, command, context) for a command and all its subcommands (typer vendors its own click)."""
    ctx = cmd.context_class(cmd, info_name=" ".join(path), terminal_width=100, max_content_width=100)
    yield path, cmd, ctx
    if hasattr(cmd, "list_commands"):
        for name in cmd.list_commands(ctx):
            yield from _walk(cmd.get_command(ctx, name), [*path, name])


def reference() -> str:
    import typer.core

    from goodhart.cli import app

    typer.core.HAS_RICH = False  # plain click help text (rich draws boxes straight to the terminal)
    root = typer.main.get_command(app)
    parts = ["# goodhart CLI reference", "",
             "Generated from the code by `python -m goodhart.cli_reference`; do not edit by hand.", ""]
    for path, cmd, ctx in _walk(root, ["goodhart"]):
        parts += [f"## {' '.join(path)}", "", "```", cmd.get_help(ctx).rstrip(), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    print(reference(), end="")
