"""A platform-neutral world of shops and orders that every platform simulator renders in its own API shape."""
