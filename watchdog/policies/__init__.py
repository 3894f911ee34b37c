"""Policy packs: the embedded default and the five seed companies."""
