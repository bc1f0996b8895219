"""Speech for calls: text-to-speech and speech-to-text backends behind small registries, audio
helpers, call recordings and their signed links (see docs/voice.md)."""
