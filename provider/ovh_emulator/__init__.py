"""A local emulator of the OVH API routes that reinstall a dedicated server with Bring Your Own Image.

Run it with `python -m ovh_emulator` (see README.md); from Python, `ovh_emulator.testing.start_emulator`
starts one and `ovh_emulator.images.build_image` builds real disk images to install.
"""
