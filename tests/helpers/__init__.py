"""Code the tests share: exported tiny models and zoos, stream servers and video files, data scenes."""
