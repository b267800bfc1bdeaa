"""The `ovh-byoi` command."""

import click


@click.group()
def main() -> None:
    """Install your own OS image on OVHcloud dedicated servers."""


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def emulator(ctx: click.Context) -> None:
    """Run a local emulator of the OVH API (see `ovh-byoi emulator --help`)."""
    # Imported here so that the rest of the command does not pay for the emulator's web stack.
    from ovh_emulator.cli import main as emulator_main

    emulator_main.main(args=ctx.args, prog_name="ovh-byoi emulator")
