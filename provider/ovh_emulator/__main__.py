from .cli import main

main(prog_name="python -m ovh_emulator")
