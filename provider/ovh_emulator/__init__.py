"""A local emulator of the OVH API routes that reinstall a dedicated server with Bring Your Own Image."""
